export { parseWwwAuthenticate, type Challenge, type Credentials } from './auth.js';
export { CredentialStore, dockerConfigDir, authKey } from './credentials.js';
export { plainHttpAllowed, isLoopback, isPrivateAddress, apiHost } from './hosts.js';
export { Transport, type TransportOptions, type HttpRequest, type HttpResponse } from './http.js';
export { Repository, MANIFEST_ACCEPT, type RepositoryOptions } from './registry.js';
export { openTransport, type RegistryOptions } from './client.js';
export { login, logout, verifyLogin, normalizeRegistryHost } from './login.js';
