import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { throttleDescriptorErrors } from '../../core/open-files.js';

/**
 * Listens and resolves with the bound port; rejects with the listen error (EADDRINUSE, EACCES...)
 * instead of leaving it to an 'error' listener. Later errors go to `onError`; running out of
 * descriptors fails every accept, so that one reaches it once a minute, saying what to raise.
 */
export function listenTcp(server: Server, port: number, host: string, onError: (error: Error) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', throttleDescriptorErrors(onError));
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** Binds a UDP socket and resolves with its port; a bind error rejects. Later errors go to `onError`. */
export function bindUdp(socket: UdpSocket, port: number, host: string, onError: (error: Error) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', onError);
      resolve(socket.address().port);
    });
  });
}

/** Closes a UDP socket; resolves also when it was never bound or is closed already. */
export function closeUdp(socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
