import type { Command } from 'commander';
import { type CommandContext, print } from '../command-context.js';
import { ExitCode } from '../exit-code.js';

/**
 * `syncproxy completion <bash|zsh>`: a completion script for the shell, made from the commands and
 * options the CLI has, so it never goes stale. `source <(syncproxy completion bash)`.
 */
export function printCompletion(context: CommandContext, shell: string, program: Command): ExitCode {
  const commands = program.commands.map((c) => c.name());
  const cases = program.commands
    .map((c) => `    ${c.name()}) opts="${c.options.map((o) => o.long ?? o.short).join(' ')}" ;;`)
    .join('\n');
  const platforms = context.registry
    .list()
    .map((c) => c.id)
    .join(' ');
  const bash = `# syncproxy completion for bash: source <(syncproxy completion bash)
_syncproxy() {
  local cur prev opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${commands.join(' ')}" -- "$cur") )
    return
  fi
  case "$prev" in
    -p|--platform|schema) COMPREPLY=( $(compgen -W "${platforms}" -- "$cur") ); return ;;
    -c|--config|-t|--target) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  case "\${COMP_WORDS[1]}" in
${cases}
    *) opts="" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -F _syncproxy syncproxy
`;
  if (shell === 'bash') print(context, bash);
  else if (shell === 'zsh') print(context, `autoload -U +X bashcompinit && bashcompinit\n${bash}`);
  else {
    context.io.stderr.write(`error (config): unknown shell "${shell}" (known: bash, zsh)\n`);
    return ExitCode.usage;
  }
  return ExitCode.ok;
}
