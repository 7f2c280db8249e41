import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { testdir } from './testdir.js';

describe('testdir', () => {
  let fromTest = '';
  let fromSuite = '';
  beforeAll(async () => {
    fromSuite = await testdir('berth-kit-suite-');
  });

  it('makes a directory that exists during the test', async () => {
    fromTest = await testdir('berth-kit-');
    expect(existsSync(fromTest)).toBe(true);
  });

  it('removed it when that test finished; a beforeAll directory lives until the file is done', () => {
    expect(fromTest).not.toBe('');
    expect(existsSync(fromTest)).toBe(false);
    expect(existsSync(fromSuite)).toBe(true);
  });
});
