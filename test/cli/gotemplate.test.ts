import { describe, expect, it } from 'vitest';
import { defaultTable, tableTemplate } from '../../src/cli/format.js';
import { GoTemplate, renderRows, renderValue } from '../../src/cli/gotemplate.js';

const img = {
  Repository: 'alpine',
  Tag: '3',
  ID: 'abc123',
  RepoTags: ['alpine:3', 'mine:latest'],
  Config: { Labels: { 'org.k': 'v1', b: 'two' }, Cmd: ['sh', '-c', 'echo'], Env: null as string[] | null },
  Size: 1234,
};
const r = (t: string, d: unknown = img) => new GoTemplate(t).render(d);

describe('Go templates (docker --format)', () => {
  it('fields, functions, pipelines', () => {
    expect(r('{{.Repository}}:{{.Tag}}')).toBe('alpine:3');
    expect(r('{{json .Config.Cmd}}')).toBe('["sh","-c","echo"]');
    expect(r('{{json .Config.Env}}')).toBe('null');
    expect(r('{{index .Config.Labels "org.k"}}')).toBe('v1');
    expect(r('{{upper .Repository}} {{.Repository | upper}} {{lower "AB"}}')).toBe('ALPINE ALPINE ab');
    expect(r('{{join .RepoTags ", "}}')).toBe('alpine:3, mine:latest');
    expect(r('{{println .Tag}}x')).toBe('3\nx');
    expect(r('{{printf "%s-%05d" .Tag .Size}}')).toBe('3-01234');
    expect(r('{{len .RepoTags}} {{(index .RepoTags 1)}}')).toBe('2 mine:latest');
    expect(r('{{.Config.Cmd}} {{.Config.Labels}}')).toBe('[sh -c echo] map[b:two org.k:v1]');
    expect(r('{{.}}', 'plain')).toBe('plain');
  });
  it('range, if/else if/else, with, variables, trimming', () => {
    expect(r('{{range .RepoTags}}[{{.}}]{{end}}')).toBe('[alpine:3][mine:latest]');
    expect(r('{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}')).toBe('0=alpine:3;1=mine:latest;');
    expect(r('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}')).toBe('b=two org.k=v1 ');
    expect(r('{{range .Config.Env}}x{{else}}none{{end}}')).toBe('none');
    expect(r('{{if eq .Tag "2"}}two{{else if eq .Tag "3"}}three{{else}}other{{end}}')).toBe('three');
    expect(r('{{if .Config.Env}}env{{else}}no env{{end}}')).toBe('no env');
    expect(r('{{with .Config}}{{len .Cmd}}{{end}}')).toBe('3');
    expect(r('{{$n := .Repository}}{{range .RepoTags}}{{$n}} {{end}}')).toBe('alpine alpine ');
    expect(r('a  {{- .Tag -}}  b')).toBe('a3b');
    expect(r('{{if and .Tag (not .Config.Env)}}ok{{end}}')).toBe('ok');
  });
  it('table, json, escapes; errors are one clear line', () => {
    const rows = [img, { ...img, Repository: 'a-much-longer-repository', Tag: 'latest' }];
    const t = renderRows('table {{.Repository}}\\t{{.Tag}}', rows, { headers: { Repository: 'REPOSITORY' } }, '');
    expect(t.split('\n')).toEqual(['REPOSITORY                 TAG', 'alpine                     3', 'a-much-longer-repository   latest']);
    expect(renderRows('json', [{ a: 1 }, { a: 2 }], { headers: {} }, '')).toBe('{"a":1}\n{"a":2}');
    expect(renderRows('{{.Tag}}', rows, { headers: {} }, '')).toBe('3\nlatest');
    expect(renderValue('{{.Tag}}\\n', img)).toBe('3\n');
    expect(() => r('{{.Tag')).toThrow(/invalid --format template: unclosed action/);
    expect(() => r('{{nosuch .Tag}}')).toThrow(/function "nosuch" not defined/);
    expect(() => r('{{if .Tag}}x')).toThrow(/missing \{\{end\}\}/);
  });

  it('a default table printed without the engine is what the engine prints for its template', () => {
    const rows = [
      { Repository: 'alpine', Tag: '3', ID: 'abc123', CreatedSince: '2 days ago', Size: '7.8MB', RunningFor: '' },
      { Repository: '<none>', Tag: '<none>', ID: 'ffffffffffffffffffffff', CreatedSince: 'Less than a second ago', Size: '0B', RunningFor: 'x' },
      { Repository: 'überlong/ñame', Tag: '', ID: '', CreatedSince: '', Size: '', RunningFor: 'ü' },
    ];
    const headers = { ID: 'IMAGE ID', CreatedSince: 'CREATED' };
    for (const columns of [['Repository', 'Tag', 'ID', 'CreatedSince', 'Size'], ['ID'], ['Size', 'RunningFor'], ['Tag', 'Repository']]) {
      const viaEngine = renderRows(`table ${tableTemplate(columns)}`, rows, { headers }, '');
      expect(defaultTable(rows, columns, headers)).toBe(viaEngine);
    }
    expect(defaultTable([], ['RunningFor'], {})).toBe('RUNNING FOR');
  });
});
