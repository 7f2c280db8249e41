import { BerthError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import type { Credentials } from './auth.js';
import { openTransport, type RegistryOptions } from './client.js';
import { CredentialStore } from './credentials.js';
import { statusError } from './http.js';

/** `docker.io`, `index.docker.io`, `https://host:5000/` -> the registry domain. */
export function normalizeRegistryHost(input: string | undefined): string {
  let h = (input ?? 'docker.io').trim().replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (h === '' || h === 'index.docker.io' || h === 'registry-1.docker.io') h = 'docker.io';
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::\d+)?$/.test(h)) {
    throw new BerthError('INVALID_ARGUMENT', `invalid registry host ${JSON.stringify(input)}`, { hint: 'give a host or host:port, e.g. registry.example.com:5000' });
  }
  return h.toLowerCase();
}

/** Check credentials against the registry (GET /v2/ through its auth challenge). */
export async function verifyLogin(domain: string, creds: Credentials | undefined, opts: RegistryOptions & OpOptions = {}): Promise<void> {
  const { transport, done } = openTransport(opts);
  try {
    transport.setCredentials(domain, creds);
    const url = `${await transport.origin(domain)}/v2/`;
    const res = await transport.request(domain, { method: 'GET', url, what: `login to ${domain}`, signal: opts.signal });
    if (res.status !== 200) throw await statusError(res, `login to ${domain}`, domain);
    await res.body.dump();
  } finally {
    await done();
  }
}

/** Verify, then store like docker does (config.json 0600, or the configured helper). */
export async function login(host: string, creds: Credentials, opts: RegistryOptions & OpOptions & { store?: CredentialStore } = {}): Promise<{ domain: string; where: string }> {
  const domain = normalizeRegistryHost(host);
  if (!creds.username) throw new BerthError('INVALID_ARGUMENT', 'login needs a username', { hint: 'pass -u USER' });
  if (!creds.password) throw new BerthError('INVALID_ARGUMENT', 'login needs a password', { hint: 'pass --password-stdin and write the password to standard input' });
  await verifyLogin(domain, creds, opts);
  const store = opts.store ?? new CredentialStore();
  const { where } = await store.store(domain, creds);
  return { domain, where };
}

export async function logout(host: string, opts: { store?: CredentialStore } = {}): Promise<{ domain: string; removed: boolean }> {
  const domain = normalizeRegistryHost(host);
  const store = opts.store ?? new CredentialStore();
  return { domain, removed: await store.erase(domain) };
}
