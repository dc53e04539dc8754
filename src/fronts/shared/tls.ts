// NORAY_TLS_CERT / NORAY_TLS_KEY: the certificate and key of the HTTP listeners (lobby, wsrelay,
// ops), read at start and again on reload. A reload swaps the context of every attached server
// for new connections only: connections already open keep the context they were accepted with.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { ConfigError } from '../../config/load.js';

export interface TlsFiles {
  /** PEM certificate, optionally followed by its chain. */
  readonly certPath: string;
  /** PEM private key of the certificate. */
  readonly keyPath: string;
}

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, for the logs. */
  readonly fingerprint: string;
  readonly validTo: string;
}

/** A cert or key file that cannot be used; its message names the variable and the path. */
export class TlsFileError extends ConfigError {
  override name = 'TlsFileError';
}

/** Both paths or neither: null when TLS is off. Throws a ConfigError naming both variables. */
export function tlsFiles(config: { readonly tlsCert: string | null; readonly tlsKey: string | null }): TlsFiles | null {
  const { tlsCert, tlsKey } = config;
  if (tlsCert === null && tlsKey === null) return null;
  if (tlsCert === null || tlsKey === null) {
    const missing = tlsCert === null ? 'NORAY_TLS_CERT' : 'NORAY_TLS_KEY';
    throw new ConfigError(`NORAY_TLS_CERT and NORAY_TLS_KEY go together: set both or neither (${missing} is not set)`);
  }
  return { certPath: tlsCert, keyPath: tlsKey };
}

function readPem(variable: string, path: string, label: RegExp, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new TlsFileError(`${variable}: cannot read "${path}" (${code})`);
  }
  if (!label.test(bytes.toString('latin1'))) {
    throw new TlsFileError(`${variable}: "${path}" is not a PEM ${what} (no "-----BEGIN ${what.toUpperCase()}-----" line)`);
  }
  return bytes;
}

/** Reads and checks both files: PEM, a parsable certificate, a key that matches it. */
function readMaterial(files: TlsFiles): Material {
  const cert = readPem('NORAY_TLS_CERT', files.certPath, /-----BEGIN CERTIFICATE-----/, 'certificate');
  const key = readPem('NORAY_TLS_KEY', files.keyPath, /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/, 'private key');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (error) {
    throw new TlsFileError(`NORAY_TLS_CERT: "${files.certPath}" holds no valid certificate (${(error as Error).message})`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new TlsFileError(
      `NORAY_TLS_KEY: "${files.keyPath}" cannot be used with the certificate of "${files.certPath}" (${(error as Error).message})`,
    );
  }
  return { cert, key, fingerprint: leaf.fingerprint256, validTo: leaf.validTo };
}

/** What a reload reports: the new certificate's fingerprint and expiry. */
export interface TlsInfo {
  readonly fingerprint: string;
  readonly validTo: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * The certificate and key every TLS listener of the process serves. `reload` rereads the files
 * and, only when both are good, gives every attached server the new context (new connections
 * get it, open ones keep theirs); on an error the old one stays and the error is thrown.
 */
export class TlsContext {
  private material: Material;
  private readonly servers = new Set<TlsServer>();

  constructor(readonly files: TlsFiles) {
    this.material = readMaterial(files);
  }

  /** null when neither variable is set; throws a ConfigError for one of them or an unusable file. */
  static fromConfig(config: { readonly tlsCert: string | null; readonly tlsKey: string | null }): TlsContext | null {
    const files = tlsFiles(config);
    return files === null ? null : new TlsContext(files);
  }

  get info(): TlsInfo {
    const { fingerprint, validTo } = this.material;
    return { fingerprint, validTo, ...this.files };
  }

  /** Rereads both files; throws a TlsFileError (and keeps serving the old context) if either is unusable. */
  reload(): TlsInfo {
    const material = readMaterial(this.files);
    for (const server of this.servers) server.setSecureContext({ cert: material.cert, key: material.key });
    this.material = material;
    return this.info;
  }

  /**
   * An HTTPS server with the current context, kept current by reload() until it closes. Typed
   * as the http.Server it extends, so its users need not tell the two apart.
   */
  createServer(options: ServerOptions, listener?: RequestListener): Server {
    const { cert, key } = this.material;
    // A TLS handshake gets the same deadline as the HTTP headers that follow it (Node's default: 120 s).
    const handshakeTimeout = options.headersTimeout;
    const server = createHttpsServer({ ...options, cert, key, ...(handshakeTimeout === undefined ? {} : { handshakeTimeout }) }, listener);
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    return server;
  }
}

/** An HTTPS server when `tls` is set, plain HTTP otherwise. */
export function createListener(tls: TlsContext | null, options: ServerOptions, listener?: RequestListener): Server {
  return tls === null ? createHttpServer(options, listener) : tls.createServer(options, listener);
}
