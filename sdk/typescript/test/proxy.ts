/** A TCP proxy between a client and a hub that the tests make misbehave: refuse connections until it starts, cut
 * the next connections before forwarding anything (after the request was sent: the client cannot know whether it
 * ran), cut every open connection, swallow the hub's answers, or refuse WebSocket upgrades as a proxy that does not
 * carry them would. */

import { type Server, type Socket, connect, createServer } from "node:net";

export class TcpProxy {
  /** Connections still to cut as soon as they send something. */
  cutNext = 0;
  refuseWebSockets = false;
  /** What the hub answers is dropped (the client waits for answers that never come). */
  swallowAnswers = false;
  /** Connections that were cut. */
  cuts = 0;
  private readonly server: Server;
  private readonly open = new Set<Socket>();

  constructor(
    private readonly upstreamPort: number,
    readonly port: number,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", () => resolve(this));
    });
  }

  /** Cut every open connection. */
  cutAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  close(): Promise<void> {
    this.cutAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.open.add(client);
    client.once("close", () => this.open.delete(client));
    client.once("data", (first: Buffer) => {
      if (this.cutNext > 0) {
        this.cutNext -= 1;
        this.cuts += 1;
        client.destroy();
        return;
      }
      if (this.refuseWebSockets && /^upgrade:\s*websocket/im.test(first.toString("latin1"))) {
        client.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
      }
      const upstream = connect(this.upstreamPort, "127.0.0.1", () => {
        upstream.write(first);
        client.pipe(upstream);
        upstream.on("data", (chunk: Buffer) => this.swallowAnswers || client.write(chunk));
      });
      this.open.add(upstream);
      upstream.once("close", () => {
        this.open.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => client.destroy());
      client.once("close", () => upstream.destroy());
    });
    client.on("error", () => client.destroy());
  }
}
