#!/usr/bin/env node
// `npm ci` runs this (the install script): builds the native relay engine (native/relay-engine)
// with node-gyp. It never fails the install: without a compiler (g++, make, python3) it says so and
// the server relays with the js engine (NORAY_UDP_RELAY_ENGINE=auto).
//
// --asan DIR: builds an AddressSanitizer copy into DIR instead (npm run test:native-asan).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'relay-engine');
const require = createRequire(import.meta.url);

/** Node's own headers where the install has them (no download from nodejs.org). */
function nodeDir() {
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? prefix : null;
}

/** The node-gyp npm runs scripts with, else the one bundled with npm, else one on PATH. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((candidate) => candidate !== undefined && candidate !== '' && existsSync(candidate));
  return found === undefined ? ['node-gyp'] : [process.execPath, found];
}

function tail(text, lines = 8) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

function buildRelease() {
  const dir = nodeDir();
  const [command, ...prefix] = nodeGyp();
  const result = spawnSync(command, [...prefix, 'rebuild', '-C', addonDir, ...(dir ? [`--nodedir=${dir}`] : [])], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  // node-gyp succeeds without building on a platform binding.gyp has no target for.
  if (result.status === 0 && existsSync(join(addonDir, 'build', 'Release', 'relay_engine.node'))) {
    process.stdout.write('noray: built the native relay engine (native/relay-engine/build/Release/relay_engine.node)\n');
    return;
  }
  const output = result.status === 0 ? 'no addon for this platform' : `${result.stdout ?? ''}\n${result.stderr ?? ''}\n${result.error?.message ?? ''}`;
  process.stderr.write(
    `noray: the native relay engine could not be built; the server will relay with the js engine ` +
      `(NORAY_UDP_RELAY_ENGINE=auto). It needs g++, make and python3. node-gyp said:\n${tail(output)}\n`,
  );
}

/** A debug build with AddressSanitizer, straight with g++ (the flags node-gyp would use, plus ASan). */
function buildAsan(outDir) {
  const dir = nodeDir();
  if (dir === null) throw new Error('Node headers not found next to node (include/node)');
  mkdirSync(outDir, { recursive: true });
  const output = join(outDir, 'relay_engine.node');
  const args = [
    '-shared', '-fPIC', '-std=c++17', '-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    `-I${join(dir, 'include', 'node')}`, `-I${require('node-addon-api').include_dir}`,
    join(addonDir, 'src', 'engine.cc'), '-o', output,
  ];
  const result = spawnSync(process.env.CXX || 'g++', args, { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  process.stdout.write(`${output}\n`);
}

const asan = process.argv.indexOf('--asan');
if (asan >= 0) buildAsan(resolve(process.argv[asan + 1] ?? join(addonDir, 'build-asan')));
else buildRelease();
