import { ErrorReportSchema } from "../operations/errorReport.js"
import { makeSchemaRegistry, type Route } from "./route.js"

/**
 * The OpenAPI 3.1 description of `routes`, generated from the Schemas the handlers decode and the
 * operations return, so it cannot drift from what the server does.
 */
export const openApiDocument = (routes: ReadonlyArray<Route>, version: string, tokenRequired: boolean) => {
  const schemas = makeSchemaRegistry()
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const path = route.path.replace("{path+}", "{path}")
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: route.describe(schemas) }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "owrt",
      version,
      description:
        "Declarative, content-addressed builds of OpenWrt firmware. Errors are `{ error: { code, message, exitCode } }` with the codes and exit codes of the CLI.",
    },
    servers: [{ url: "/" }],
    ...(tokenRequired ? { security: [{ bearer: [] }] } : {}),
    paths,
    components: {
      schemas: {
        ...schemas.definitions,
        ErrorDocument: {
          type: "object",
          required: ["error"],
          properties: { error: schemas.of(ErrorReportSchema) },
        },
      },
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "The token `owrt serve --token` was started with (GET also takes `?token=`)",
        },
      },
    },
  }
}
