/**
 * One error class with a stable `code`. Library code throws BerthError (or wraps a lower error
 * with `cause`); only the CLI catches, prints one line and maps the code to an exit status.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED'
  | 'UNAUTHORIZED'
  | 'UNAVAILABLE'
  | 'PROCESS'
  | 'INTERNAL'
  | 'ABORTED';

/** Exit status per code: documented in README.md ("Exit codes"). */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  INTERNAL: 1,
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  DIGEST_MISMATCH: 5,
  UNSUPPORTED: 6,
  UNAUTHORIZED: 7,
  UNAVAILABLE: 8,
  PROCESS: 9,
  ABORTED: 130,
};

export interface BerthErrorOptions {
  cause?: unknown;
  /** What the user can do about it; appended to the one-line message. */
  hint?: string;
  /** Exit status to use instead of the code's default (e.g. a container's own exit status). */
  exitCode?: number;
  /** Lines shown under the one-line message (e.g. a failed build step's last output lines). */
  detail?: readonly string[];
}

/**
 * The brand every BerthError carries, shared by every installed copy of berth (`Symbol.for`), as
 * undici brands its errors: `isBerthError` and `instanceof BerthError` hold for an error thrown by
 * another copy of the package (two versions in one node_modules tree).
 */
const kBerthError = Symbol.for('berth.error');

/** All codes, for callers that switch over them. */
export const ERROR_CODES: readonly ErrorCode[] = Object.keys(EXIT_CODES) as ErrorCode[];

export class BerthError extends Error {
  override readonly name = 'BerthError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number;
  readonly detail: readonly string[];

  constructor(code: ErrorCode, message: string, opts: BerthErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT_CODES[code];
    this.detail = opts.detail ?? [];
  }

  /** The one line the CLI prints. */
  oneLine(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }

  /** `x instanceof BerthError` checks the brand, so it holds across copies; subclasses keep the prototype check. */
  static override [Symbol.hasInstance](value: unknown): value is BerthError {
    if (this !== BerthError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [kBerthError]?: unknown })[kBerthError] === true;
  }
}
// On the prototype, so every instance has it and it is not an own (printed) field.
Object.defineProperty(BerthError.prototype, kBerthError, { value: true, enumerable: false, writable: false });

/** Whether `e` is a BerthError (from this or any other copy of berth), optionally with `code`. */
export function isBerthError(e: unknown, code?: ErrorCode): e is BerthError {
  return e instanceof BerthError && (code === undefined || e.code === code);
}

/** Convert a Node system error (ENOENT, EACCES, ...) about `what` into a BerthError. */
export function fromSystemError(e: unknown, what: string): BerthError {
  if (e instanceof BerthError) return e;
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return new BerthError('NOT_FOUND', `${what}: no such file or directory`, { cause: e });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new BerthError('UNAVAILABLE', `${what}: permission denied (${err.code})`, {
        cause: e,
        hint: 'check the permissions of the berth root or pass --root',
      });
    case 'ENOTDIR':
      return new BerthError('INVALID_ARGUMENT', `${what}: a path component is not a directory`, { cause: e });
    case 'ENOSPC':
      return new BerthError('UNAVAILABLE', `${what}: no space left on device`, { cause: e });
    case 'EEXIST':
      return new BerthError('ALREADY_EXISTS', `${what}: already exists`, { cause: e });
    case 'ABORT_ERR':
      return new BerthError('ABORTED', `${what}: aborted`, { cause: e });
    default:
      return new BerthError('INTERNAL', `${what}: ${err?.message ?? String(e)}`, { cause: e });
  }
}
