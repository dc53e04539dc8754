// Embedding noray: build an App from a config and start it (what the bin does, minus signals).
export { App, type AppOptions } from './app.js';
export { ConfigError, configWith, helpText, parseCli, readEnvFile, resolveConfig } from './config/load.js';
export type { Config } from './config/schema.js';
export type { Front } from './fronts/front.js';
