/*
 * The library's operations, frontend-neutral: each takes Schema-decoded parameters and returns JSON-safe
 * data with the field names `owrt … --json` prints. Every CLI command, HTTP route and MCP tool calls one.
 * MCP tools and the HTTP API are generated from `operations`.
 * `destructive` ones (flash) also check the configuration's allow-list themselves; a frontend may still
 * leave them out (the web server unless flashing was enabled at its start).
 * Two are the CLI's only and left out of `operations`: `ensureBuilder` (its signature opt-out stays with a
 * person; realize fetches builders anyway) and `identifyCard` (it reads any block device, with no
 * allow-list to confine it). `cacheKeygen` writes secret key files where it is told: a person's tool too.
 */
import { audit } from "./audit.js"
import { builderDevices } from "./builderDevices.js"
import { builderPackages } from "./builderPackages.js"
import { cacheKeygen, cacheList, cachePull, cachePush, cacheVerify } from "./cache.js"
import { collectGarbage } from "./collectGarbage.js"
import { diff } from "./diff.js"
import { ensureBuilder } from "./ensureBuilder.js"
import { flash } from "./flash.js"
import { flashDevices } from "./flashDevices.js"
import { getBuild } from "./getBuild.js"
import { getProfile } from "./getProfile.js"
import { identifyCard } from "./identifyCard.js"
import { listArtifacts } from "./listArtifacts.js"
import { listBuilders } from "./listBuilders.js"
import { listBuilds } from "./listBuilds.js"
import { listFlashes } from "./listFlashes.js"
import { listProfiles } from "./listProfiles.js"
import { listStore } from "./listStore.js"
import type { AnyOperation } from "./operation.js"
import { plan } from "./plan.js"
import { profileHistory } from "./profileHistory.js"
import { pruneBuilders } from "./pruneBuilders.js"
import { realize } from "./realize.js"
import { realizeBatch } from "./realizeBatch.js"
import { storePath } from "./storePath.js"
import { storeVerify } from "./storeVerify.js"

export type { AnyOperation, Operation, OperationContext } from "./operation.js"
export { defineOperation } from "./operation.js"
export {
  audit,
  builderDevices,
  builderPackages,
  cacheKeygen,
  cacheList,
  cachePull,
  cachePush,
  cacheVerify,
  collectGarbage,
  diff,
  ensureBuilder,
  flash,
  flashDevices,
  getBuild,
  getProfile,
  identifyCard,
  listArtifacts,
  listBuilders,
  listBuilds,
  listFlashes,
  listProfiles,
  listStore,
  plan,
  profileHistory,
  pruneBuilders,
  realize,
  realizeBatch,
  storePath,
  storeVerify,
}

/** Every operation, in the order frontends list them. */
export const operations: ReadonlyArray<AnyOperation> = [
  listProfiles,
  getProfile,
  profileHistory,
  plan,
  realize,
  realizeBatch,
  listBuilds,
  getBuild,
  listArtifacts,
  audit,
  diff,
  listBuilders,
  builderDevices,
  builderPackages,
  pruneBuilders,
  listStore,
  storePath,
  storeVerify,
  collectGarbage,
  cacheList,
  cachePush,
  cachePull,
  cacheVerify,
  flashDevices,
  listFlashes,
  flash,
]

export const operationByName = (name: string): AnyOperation | undefined =>
  operations.find((o) => o.name === name)
