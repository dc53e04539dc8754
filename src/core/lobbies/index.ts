export * from './events.js';
export * from './results.js';
export * from './service.js';
export * from './store.js';
export { TrackedTimers } from './timers.js';
