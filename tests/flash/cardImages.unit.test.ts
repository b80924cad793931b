import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { listArtifacts, realize } from "../../src/operations/index.js"
import { mirrorProjectLayer } from "../helpers/mirrorProject.js"

/*
 * (scopedLive: the real clock, since store locks are polled.)
 *
 * The images a card may take, as the store lists them for a flash client: the real core builds an x86
 * profile (combined, combined-efi, rootfs and kernel images) and an ath79 one (factory and sysupgrade)
 * with the stand-in Image Builder, then lists what is stored.
 */

const context = { requestedBy: "api" } as const

describe("card images in the store", () => {
  it.scopedLive(
    "lists only images that go on a card, each set's in the order flash prefers them",
    () =>
      Effect.gen(function* () {
        const router = yield* realize.run({ profile: "router" }, context)
        const ap = yield* realize.run({ profile: "ap" }, context)
        const all = (yield* listArtifacts.run({}, context)).artifacts
        // What the store holds besides: images that never go on a card.
        expect(all.map((a) => a.type)).toEqual(
          expect.arrayContaining(["sysupgrade", "rootfs", "kernel", "factory", "combined"]),
        )

        const { artifacts } = yield* listArtifacts.run({ card: true }, context)
        expect(artifacts.map((a) => [a.profile, a.type, a.filesystem])).toEqual([
          // The newest set first; in it, the image `owrt flash ap` would write first.
          ["ap", "factory", "squashfs"],
          ["router", "combined-efi", "squashfs"],
          ["router", "combined-efi", "ext4"],
          ["router", "combined", "squashfs"],
          ["router", "combined", "ext4"],
        ])
        expect(artifacts.filter((a) => a.key === router.key).map((a) => a.name)).toEqual(
          expect.arrayContaining([expect.stringContaining("squashfs-combined-efi")]),
        )
        expect(artifacts[0]?.key).toBe(ap.key)

        // One profile's, and no more than asked for.
        const one = yield* listArtifacts.run({ card: true, profile: "router", limit: 1 }, context)
        expect(one.artifacts.map((a) => a.type)).toEqual(["combined-efi"])
      }).pipe(
        Effect.provide(
          mirrorProjectLayer({
            router: 'release: "24.10.2"\ntarget: x86/64\ndevice: generic\nrootfs_size: 32\n',
            ap: 'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\n',
          }),
        ),
      ),
    180_000,
  )
})
