package sshell

import "strings"

// SplitPipeline returns the stages of cmd if it is a plain pipeline,
// stage | stage | ..., whose separators are top-level `|`: not inside
// quotes, $(...), (...), `...` or { ...; } groups. Anything else at top
// level that a split would change the meaning of — `;`, `&`, `&&`, `||`,
// `|&`, a newline or a comment — or unbalanced quoting, or $$ (which
// the stages of one shell share), makes it return cmd whole, to run in
// one function. Redirections such as 2>&1 and >&3
// are not separators.
func SplitPipeline(cmd string) []string {
	whole := []string{cmd}
	if strings.Contains(cmd, "$$") {
		// The stages would each see their own shell's pid (deliverable
		// Figure 12's `tail --pid=$$ ... | { ... kill $$; }`).
		return whole
	}
	var stack []byte // open contexts: '"', '(', '`'
	braces := 0
	var cuts []int
	wordStart := func(i int) bool { return i == 0 || strings.IndexByte(" \t;|&(", cmd[i-1]) >= 0 }
	wordEnd := func(i int) bool { return i+1 == len(cmd) || strings.IndexByte(" \t;", cmd[i+1]) >= 0 }
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		top := byte(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch top {
		case '"':
			switch {
			case c == '\\':
				i++
			case c == '"':
				stack = stack[:len(stack)-1]
			case c == '$' && i+1 < len(cmd) && cmd[i+1] == '(':
				stack = append(stack, '(')
				i++
			case c == '`':
				stack = append(stack, '`')
			}
			continue
		case '`':
			switch c {
			case '\\':
				i++
			case '`':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		switch c {
		case '\\':
			i++
			continue
		case '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return whole
			}
			i += j + 1
			continue
		case '"', '`':
			stack = append(stack, c)
			continue
		case '(':
			stack = append(stack, '(')
			continue
		case ')':
			if top != '(' {
				return whole
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if top != 0 {
			continue
		}
		switch {
		case c == '{' && wordStart(i) && wordEnd(i):
			braces++
		case c == '}' && wordStart(i) && wordEnd(i):
			if braces == 0 {
				return whole
			}
			braces--
		case braces > 0:
		case c == '|':
			if i+1 < len(cmd) && (cmd[i+1] == '|' || cmd[i+1] == '&') {
				return whole
			}
			cuts = append(cuts, i)
		case c == '&':
			if i > 0 && (cmd[i-1] == '>' || cmd[i-1] == '<') || i+1 < len(cmd) && cmd[i+1] == '>' {
				continue // a redirection: 2>&1, <&3, &>file
			}
			return whole
		case c == ';' || c == '\n':
			return whole
		case c == '#' && wordStart(i):
			return whole
		}
	}
	if len(stack) > 0 || braces != 0 || len(cuts) == 0 {
		return whole
	}
	var out []string
	from := 0
	for _, k := range append(cuts, len(cmd)) {
		s := strings.TrimSpace(cmd[from:k])
		if s == "" {
			return whole
		}
		out = append(out, s)
		from = k + 1
	}
	return out
}
