import { BerthError } from '../errors.js';

export interface Challenge {
  /** Lower-case scheme: `basic` or `bearer`. */
  scheme: string;
  params: Record<string, string>;
}

/** Username/password, or an identity token (OAuth refresh token) from `docker login`. */
export interface Credentials {
  username?: string;
  password?: string;
  identityToken?: string;
}

/**
 * Parse a `WWW-Authenticate` header (RFC 7235): `Bearer realm="…",service="…",scope="…"`.
 * Several challenges in one header are split; the first bearer (else basic) one is returned.
 * Throws UNAUTHORIZED naming the host when the header cannot be read.
 */
export function parseWwwAuthenticate(header: string, host: string): Challenge {
  const bad = () =>
    new BerthError('UNAUTHORIZED', `registry ${host} sent a malformed WWW-Authenticate header`, {
      hint: 'the registry or a proxy in front of it is misconfigured',
    });
  const s = header.trim();
  const challenges: Challenge[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    ws();
    const scheme = token();
    if (!scheme) throw bad();
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(ch);
    ws();
    for (;;) {
      const save = i;
      const key = token();
      if (!key) break;
      ws();
      if (s[i] !== '=') {
        // The next challenge's scheme.
        i = save;
        break;
      }
      i++;
      ws();
      let value: string;
      if (s[i] === '"') {
        i++;
        value = '';
        for (;;) {
          if (i >= s.length) throw bad();
          const c = s[i++]!;
          if (c === '"') break;
          if (c === '\\') {
            if (i >= s.length) throw bad();
            value += s[i++];
          } else value += c;
        }
      } else {
        const t = token();
        if (t === undefined) throw bad();
        value = t;
      }
      ch.params[key.toLowerCase()] = value;
      ws();
      if (s[i] === ',') {
        i++;
        ws();
        continue;
      }
      if (i >= s.length) break;
      throw bad();
    }
  }
  const pick = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
  if (!pick) throw bad();
  if (pick.scheme === 'bearer') {
    const realm = pick.params.realm;
    if (!realm) throw bad();
    try {
      const u = new URL(realm);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad();
    } catch {
      throw bad();
    }
  }
  return pick;
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64');
}
