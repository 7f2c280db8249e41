import { describe, expect, it } from 'vitest';
import { expandHeredoc, expandWord, expandWords } from '../../../src/build/dockerfile/expand.js';
import { toStages } from '../../../src/build/dockerfile/instructions.js';
import { parseDockerfile, splitWords } from '../../../src/build/dockerfile/parse.js';
import { BerthError } from '../../../src/errors.js';

const env = new Map([
  ['A', 'one'],
  ['EMPTY', ''],
  ['SP', 'x y'],
]);

describe('expansion (BuildKit shell.Lex)', () => {
  it.each([
    ['$A', 'one'],
    ['${A}', 'one'],
    ['${A}-$A', 'one-one'],
    ['${MISSING:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${A:+set}', 'set'],
    ['${MISSING:+set}', ''],
    ['${EMPTY+set}', 'set'],
    ["'$A'", '$A'],
    ['"$A words"', 'one words'],
    ['a\\ b', 'a b'],
    ['\\$A', '$A'],
    ['"\\$A"', '$A'],
    ['"a\\b"', 'a\\b'],
    ['$', '$'],
    ['${MISSING:-${A}}', 'one'],
    ['$MISSING', ''],
  ])('%s → %s', (w, want) => {
    expect(expandWord(w, env).value).toBe(want);
  });

  it('records the names it used', () => {
    expect([...expandWord('${A:-$B}', env).used].sort()).toEqual(['A', 'B']);
  });

  it('fails on ${V:?} for an unset variable and on an unterminated quote', () => {
    expect(() => expandWord('${MISSING:?needed}', env)).toThrow(BerthError);
    expect(() => expandWord('"open', env)).toThrow(/double-quote/);
  });

  it('splits words outside quotes only', () => {
    expect(expandWords('a "b c" $SP', env).words).toEqual(['a', 'b c', 'x', 'y']);
  });

  it('keeps quotes in heredoc content', () => {
    expect(expandHeredoc(`say "$A" '\${A}'\n`, env)).toBe(`say "one" 'one'\n`);
  });

  it('the backtick escape token', () => {
    expect(expandWord('a` b', env, '`').value).toBe('a b');
  });
});

describe('parser', () => {
  it('joins continued lines as BuildKit does and drops comments inside them', () => {
    const p = parseDockerfile('FROM x\n\n# c\nRUN echo a \\\n# inside\n    b \\\n\\\n    c > /f\n');
    expect(p.nodes.map((n) => [n.line, n.keyword, n.rest])).toEqual([
      [1, 'FROM', 'x'],
      [4, 'RUN', 'echo a     b     c > /f'],
    ]);
  });

  it('honours the escape directive', () => {
    const p = parseDockerfile('# escape=`\nFROM x\nRUN echo one `\n    two\nRUN echo C:\\path\n');
    expect(p.escape).toBe('`');
    expect(p.nodes.map((n) => n.rest)).toEqual(['x', 'echo one     two', 'echo C:\\path']);
  });

  it('ignores syntax with a warning and stops directives at the first other line', () => {
    const p = parseDockerfile('# syntax=docker/dockerfile:1\nFROM x\n# escape=`\nRUN a \\\n b\n');
    expect(p.escape).toBe('\\');
    expect(p.warnings[0]!.text).toMatch(/ignored/);
    expect(p.nodes[1]!.rest).toBe('a  b');
  });

  it('names the line of an unknown instruction', () => {
    expect(() => parseDockerfile('FROM base\nRUN true\nFROMM base\n')).toThrow('Dockerfile:3: unknown instruction FROMM (did you mean FROM?)');
  });

  it('reads heredocs: several per line, <<- and quoted delimiters', () => {
    const p = parseDockerfile('FROM x\nCOPY <<A <<"B" /d/\na $X\nA\nb $X\nB\nRUN <<-EOT\n\techo hi\n\tEOT\n');
    const copy = p.nodes[1]!;
    expect(copy.heredocs).toEqual([
      { name: 'A', data: 'a $X\n', chomp: false, expand: true },
      { name: 'B', data: 'b $X\n', chomp: false, expand: false },
    ]);
    expect(copy.endLine).toBe(6);
    expect(p.nodes[2]!.heredocs[0]).toMatchObject({ name: 'EOT', data: '\techo hi\n', chomp: true });
  });

  it('fails on an unterminated heredoc, naming its line', () => {
    expect(() => parseDockerfile('FROM x\nRUN <<EOF\necho\n')).toThrow(/^Dockerfile:2: unterminated heredoc EOF/);
  });

  it('splits words keeping quotes, as parseWords does', () => {
    expect(splitWords(`a=1 b="two words" 'c d'=e x\\ y`)).toEqual(['a=1', 'b="two words"', "'c d'=e", 'x\\ y']);
  });
});

describe('instructions and stages', () => {
  it('types every instruction', () => {
    const df = toStages(
      parseDockerfile(
        [
          'ARG V=1',
          'FROM base AS Build',
          'ENV A=1 B="x y"',
          'ENV LEGACY spaced value',
          'LABEL "c d"=e',
          'RUN --mount=type=cache,target=/c --network=none make',
          'RUN ["/bin/sh", "-c", "x"]',
          'COPY --from=build --chown=1:2 a b /d/',
          'HEALTHCHECK --interval=5s CMD true',
          'ONBUILD RUN echo hi',
          'FROM build',
        ].join('\n'),
      ),
    );
    expect(df.metaArgs[0]!.args).toEqual([{ key: 'V', value: '1' }]);
    expect(df.stages.map((s) => s.name)).toEqual(['build', undefined]);
    const ins = df.stages[0]!.instructions;
    expect(ins[0]).toMatchObject({ kind: 'ENV', pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '"x y"' }] });
    expect(ins[1]).toMatchObject({ kind: 'ENV', pairs: [{ key: 'LEGACY', value: 'spaced value' }] });
    expect(ins[3]).toMatchObject({ kind: 'RUN', shell: true, cmd: ['make'] });
    expect(ins[3]!.flags.get('mount')).toEqual(['type=cache,target=/c']);
    expect(ins[4]).toMatchObject({ kind: 'RUN', shell: false, cmd: ['/bin/sh', '-c', 'x'] });
    expect(ins[5]).toMatchObject({ kind: 'COPY', srcs: ['a', 'b'], dest: '/d/' });
    expect(ins[6]).toMatchObject({ kind: 'HEALTHCHECK', shell: true, cmd: ['true'] });
    expect(ins[7]).toMatchObject({ kind: 'ONBUILD', expression: 'RUN echo hi', inner: { kind: 'RUN' } });
  });

  it('refuses bad input with the line', () => {
    expect(() => toStages(parseDockerfile('FROM a\nCOPY --bogus=1 a b\n'))).toThrow(/^Dockerfile:2: COPY: unknown flag: --bogus/);
    expect(() => toStages(parseDockerfile('RUN x\nFROM a\n'))).toThrow(/^Dockerfile:1: RUN before the first FROM/);
    expect(() => toStages(parseDockerfile('FROM a AS x\nFROM b AS x\n'))).toThrow(/duplicate stage name/);
    expect(() => toStages(parseDockerfile('FROM a\nENV A=1 B\n'))).toThrow(/^Dockerfile:2: Syntax error/);
    expect(() => toStages(parseDockerfile('FROM a\nONBUILD ONBUILD RUN x\n'))).toThrow(/Chaining ONBUILD/);
  });
});
