/*
 * The library's operations, frontend-neutral: each takes Schema-decoded parameters and returns JSON-safe
 * data with the field names `owrt … --json` prints. MCP tools and the HTTP API are generated from `operations`.
 * `destructive` ones (flash) also check the configuration's allow-list themselves; a frontend may still
 * leave them out (the web server unless flashing was enabled at its start).
 */
import { audit } from "./audit.js"
import { flash } from "./flash.js"
import { flashDevices } from "./flashDevices.js"
import { getBuild } from "./getBuild.js"
import { getProfile } from "./getProfile.js"
import { listArtifacts } from "./listArtifacts.js"
import { listBuilds } from "./listBuilds.js"
import { listProfiles } from "./listProfiles.js"
import type { AnyOperation } from "./operation.js"
import { plan } from "./plan.js"
import { profileHistory } from "./profileHistory.js"
import { realize } from "./realize.js"
import { realizeBatch } from "./realizeBatch.js"
import { storeVerify } from "./storeVerify.js"

export type { AnyOperation, Operation, OperationContext } from "./operation.js"
export { defineOperation } from "./operation.js"
export {
  audit,
  flash,
  flashDevices,
  getBuild,
  getProfile,
  listArtifacts,
  listBuilds,
  listProfiles,
  plan,
  profileHistory,
  realize,
  realizeBatch,
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
  storeVerify,
  flashDevices,
  flash,
]

export const operationByName = (name: string): AnyOperation | undefined =>
  operations.find((o) => o.name === name)
