import fc from 'fast-check';
import { runs } from './fuzz.js';

// Properties without an explicit count use fast-check's default of 100, scaled like the rest.
fc.configureGlobal({ numRuns: runs(100) });
