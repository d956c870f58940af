// Node-RED for the side-by-side workflow benchmark: the flow only, no editor, no logging noise.
module.exports = {
    uiPort: parseInt(process.env.NODE_RED_PORT, 10),
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    flowFile: "flows.json",
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { tours: false },
};
