# Deliverable Figure 12 (bottom), as written but for the shared file
# system, $FS (the figure's /fs), and cmdA | cmdB, here seq 1 5 | wc -l:
# the pipe rewritten through a shared file, the end marked by EOF. It
# prints 5; the second command then kills its own shell (kill $$), so its
# exit status is 143. (Figure 12 top needs nc and an rdv command and is
# not run; blossom sshell splits a plain pipeline through DSO pipes
# itself.)
FS=${FS:-/fs}
sshell "seq 1 5 | awk '{print \$0}END{print \"EOF\"}' > ${FS}/de41a38e" &
sshell "tail -n +0 --pid=\$\$ -f --retry ${FS}/de41a38e 2>/dev/null | { sed \"/EOF/ q\" && kill \$\$ ;} | grep -v ^EOF\$ | wc -l"
