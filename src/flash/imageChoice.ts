/*
 * Which of a build's images goes on a card. A card takes a whole-disk image: an SD-card image, a
 * combined (partition table + boot + root) image, or a factory image. A sysupgrade image is for a running
 * device and never goes on a card.
 */

export type CardImagePreference = "auto" | "sdcard" | "combined" | "combined-efi" | "factory"

export interface CandidateImage {
  readonly name: string
  readonly type: string
  readonly filesystem?: string | null | undefined
}

/** The image types a card takes, most preferred first. */
const cardTypes = ["sdcard", "ext4-sdcard", "squashfs-sdcard", "combined-efi", "combined", "factory"]

/** Whether an image goes on a card at all: never a sysupgrade, kernel or rootfs image. */
export const isCardImage = (image: CandidateImage): boolean => cardTypes.includes(image.type)

/** How much flash prefers an image for a card: lower is better. */
const rank = (image: CandidateImage): number => {
  const byType = cardTypes.indexOf(image.type)
  // squashfs first: it is OpenWrt's default and keeps factory reset working.
  const byFilesystem = image.filesystem === "squashfs" || image.name.includes("squashfs") ? 0 : 1
  return byType * 2 + byFilesystem
}

/** The card images among `images`, the one `chooseCardImage(images, "auto")` picks first. */
export const cardImages = <I extends CandidateImage>(images: ReadonlyArray<I>): ReadonlyArray<I> =>
  images.filter(isCardImage).sort((a, b) => rank(a) - rank(b))

export const chooseCardImage = <I extends CandidateImage>(
  images: ReadonlyArray<I>,
  preference: CardImagePreference,
): { readonly chosen: I; readonly why: string } | { readonly chosen: undefined; readonly why: string } => {
  const eligible = images.filter((i) =>
    preference === "auto"
      ? isCardImage(i)
      : preference === "sdcard"
        ? i.type.endsWith("sdcard")
        : i.type === preference,
  )
  const [chosen] = [...eligible].sort((a, b) => rank(a) - rank(b))
  const offered = images.map((i) => `${i.name} (${i.type})`).join(", ") || "no images"
  if (!chosen) {
    return {
      chosen: undefined,
      why:
        preference === "auto"
          ? `no image for a card among ${offered} (a sysupgrade image is for a running device, not a card)`
          : `no ${preference} image among ${offered}`,
    }
  }
  const others =
    eligible.length > 1
      ? ` over ${eligible
          .filter((i) => i !== chosen)
          .map((i) => i.name)
          .join(", ")}`
      : ""
  return {
    chosen,
    why:
      preference === "auto"
        ? `chose the ${chosen.type} image ${chosen.name}${others} (sysupgrade images never go on a card)`
        : `chose the ${chosen.type} image ${chosen.name} (the profile's flash.image)`,
  }
}
