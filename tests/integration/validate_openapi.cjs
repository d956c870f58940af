// Validates an OpenAPI document with @apidevtools/swagger-parser (installed by the test into
// build/npm). Usage: node validate_openapi.cjs FILE; exit 0 when valid, 1 with the reason.
const path = require("path");
const SwaggerParser = require(path.resolve(process.env.NPM_PREFIX, "node_modules", "@apidevtools", "swagger-parser"));
SwaggerParser.validate(process.argv[2])
  .then((api) => { console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`); })
  .catch((error) => { console.error(`invalid: ${error.message}`); process.exit(1); });
