#!/bin/sh
# Way 2 (see README.md): an ipset for knockd's grants, accepted on the door's port by a rich
# rule in the public zone. Needs NftablesTableOwner=no in /etc/firewalld/firewalld.conf
# (firewalld 2). Then use knockd-firewalld.yaml's door.
set -e
firewall-cmd --permanent --new-ipset=knockd_ssh4 --type=hash:ip --option=timeout=0
firewall-cmd --permanent --new-ipset=knockd_ssh6 --type=hash:ip --option=timeout=0 --option=family=inet6
firewall-cmd --permanent --zone=public \
    --add-rich-rule='rule family=ipv4 source ipset=knockd_ssh4 port port=2222 protocol=tcp accept'
firewall-cmd --permanent --zone=public \
    --add-rich-rule='rule family=ipv6 source ipset=knockd_ssh6 port port=2222 protocol=tcp accept'
firewall-cmd --reload
