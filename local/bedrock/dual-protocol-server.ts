import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';

export type RequestHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListeningServer {
  readonly port: number;
  readonly endpoint: string;
  close(): Promise<void>;
}

/** The first bytes of every cleartext HTTP/2 connection ("prior knowledge", RFC 9113 section 3.3). */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Serves cleartext HTTP/2 and HTTP/1.1 on one port of 127.0.0.1: the AWS SDK's Bedrock runtime client speaks
 * HTTP/2, the Anthropic SDK and most other clients HTTP/1.1. Each connection is handed to the matching server
 * after its first bytes are read. HTTP/1.1 gets the socket with those bytes put back (`unshift`); HTTP/2 reads
 * the socket's handle natively and would miss them, so it gets a stream that replays them first.
 */
export async function listenDualProtocol(handler: RequestHandler, port = 0): Promise<ListeningServer> {
  const http1Server = http.createServer({ keepAliveTimeout: 5_000 }, handler);
  const http2Server = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  http2Server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  const router = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const prefaceLength = Math.min(first.length, HTTP2_PREFACE.length);
      if (first.subarray(0, prefaceLength).equals(HTTP2_PREFACE.subarray(0, prefaceLength))) {
        http2Server.emit('connection', replaying(first, socket));
      } else {
        socket.unshift(first);
        http1Server.emit('connection', socket);
      }
      socket.resume();
    });
  });

  await new Promise<void>((resolve, reject) => {
    router.once('error', reject);
    router.listen(port, '127.0.0.1', () => resolve());
  });
  const address = router.address() as net.AddressInfo;
  return {
    port: address.port,
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      http1Server.close();
      http2Server.close();
      await new Promise<void>((resolve) => router.close(() => resolve()));
    },
  };
}

/** A duplex over `socket` whose readable side starts with `first`. */
function replaying(first: Buffer, socket: net.Socket): Duplex {
  const stream = new Duplex({
    read: () => {
      socket.resume();
    },
    write: (chunk, encoding, callback) => {
      socket.write(chunk, encoding, callback);
    },
    final: (callback) => {
      socket.end(callback);
    },
    destroy: (error, callback) => {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  stream.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.once('end', () => stream.push(null));
  socket.once('error', (error) => stream.destroy(error));
  socket.once('close', () => stream.destroy());
  return stream;
}
