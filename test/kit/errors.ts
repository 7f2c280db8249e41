import { isBerthError } from '../../src/errors.js';

/** The stable `code` a promise rejects with (a BerthError's), or undefined when it resolves; other errors are rethrown. */
export async function errorCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    if (!isBerthError(e)) throw e;
    return e.code;
  }
}
