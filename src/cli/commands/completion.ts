import { defineCommand } from '../command.js';
import { COMMANDS } from './index.js';

export default defineCommand<{ shell?: string }>({
  command: 'completion [shell]',
  describe: 'Print a bash or zsh completion script',
  builder: (y) => y.positional('shell', { type: 'string', choices: ['bash', 'zsh'], default: 'bash' }),
  async run(argv, ctx) {
    const verbs = COMMANDS.map((c) => c.name).join(' ');
    const bash = `# berth completion (bash): eval "$(berth completion)"
_berth() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "${verbs}" -- "$cur") ); return; fi
  case "\${COMP_WORDS[1]}" in
    run|inspect|history|rmi|tag|push|save) COMPREPLY=( $(compgen -W "$(berth images --format json 2>/dev/null | sed -n 's/.*"name": "\\(.*\\)".*/\\1/p')" -- "$cur") ) ;;
    *) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
  esac
}
complete -F _berth berth`;
    ctx.out(argv.shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash);
  },
});
