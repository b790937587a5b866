/**
 * The TCP connect of an SSH connection, with a deadline of its own. A SYN is answered by the
 * peer's kernel within a round trip even when the host is loaded, while the SSH handshake after it
 * may take seconds (key exchange, a slow sshd): one 10 s budget for both made a failover wait 10 s
 * on a cut-off primary whose TCP port never answered (issue 17: RTO after a partition).
 */
import { Socket } from 'node:net';

/** The connect found no answer within `timeoutMs` (no SYN-ACK, no refusal). */
export class TcpConnectTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no TCP answer in ${timeoutMs / 1000} s`);
  }
}

/** A connected socket, or the socket's error (ECONNREFUSED, ENOTFOUND …), or TcpConnectTimeout. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TcpConnectTimeout(timeoutMs));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.connect(port, host);
  });
}
