// Starts Swagger UI on the gateway's own document. A file of its own, not an inline script, so
// the page's Content-Security-Policy can allow scripts from the gateway only.
"use strict";
window.ui = SwaggerUIBundle({
  // Relative, so the page works behind a proxy that mounts the gateway under a prefix.
  url: "openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The default sends the document to the public validator: nothing leaves the gateway.
  validatorUrl: null,
  deepLinking: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  // An API key typed into "Authorize" lives in the page only, never in the browser's storage.
  persistAuthorization: false,
});
