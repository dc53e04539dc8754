// `npm run env-example`: writes .env.example from the option table (src/config/options/*.ts).
import { writeFileSync } from 'node:fs';
import { envExample } from '../src/config/help.js';

const file = new URL('../.env.example', import.meta.url);
writeFileSync(file, envExample());
process.stdout.write(`wrote ${file.pathname}\n`);
