export * from './events.js';
export * from './service.js';
export { TrackedTimers } from './timers.js';
