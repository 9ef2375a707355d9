import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

export type Alg = 'RS256' | 'ES256';

export interface SigningKey {
  kid: string;
  alg: Alg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** A key pair of the given algorithm, its public half as a JWK with `kid`, `alg` and `use`. */
export async function makeKey(kid: string, alg: Alg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Signs `claims` with `key`, the header naming its kid (or `header` overriding both). */
export function signWith(
  key: SigningKey,
  claims: JWTPayload,
  header: { kid?: string; alg?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

export interface JwksServer {
  url: string;
  /** The keys published from now on (a rotation replaces them). */
  publish(keys: SigningKey[]): void;
  /** Answer 500 instead of the key set, as an identity provider having an outage. */
  failing(on: boolean): void;
  /** How many times the key set was requested. */
  fetches(): number;
  close(): Promise<void>;
}

/** An identity provider's key set endpoint on a loopback port, as the service would fetch it. */
export async function startJwksServer(keys: SigningKey[]): Promise<JwksServer> {
  let published = keys;
  let fail = false;
  let count = 0;
  const server: Server = createServer((req, res) => {
    count += 1;
    if (fail || req.url !== '/.well-known/jwks.json') {
      res.writeHead(fail ? 500 : 404).end();
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    publish: (next) => {
      published = next;
    },
    failing: (on) => {
      fail = on;
    },
    fetches: () => count,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
