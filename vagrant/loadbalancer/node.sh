#!/usr/bin/env bash
# Sets up one machine of the load balancer test bed (layer-2 direct server return):
#   node.sh balancer VIP ADDR  the balancer holds the VIP next to its own ADDR on the private
#                              network, so it answers ARP for the VIP and clients send to it
#   node.sh backend VIP        a backend holds the VIP on lo without announcing it and serves
#                              HTTP on :8080 with its host name; its replies go straight to the client
# Everything survives reboots (a systemd unit per service, sysctl.d).
set -euo pipefail
usage="usage: node.sh balancer VIP ADDR | node.sh backend VIP"
role=${1:?$usage}
vip=${2:?$usage}

service() { # name, description, command, [oneshot]
  local type=${4:-simple} remain=no
  [[ $type == oneshot ]] && remain=yes
  cat > "/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=$2
After=network-online.target
Wants=network-online.target

[Service]
Type=$type
RemainAfterExit=$remain
ExecStart=$3

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now "$1.service"
}

case $role in
  balancer)
    addr=${3:?$usage}
    # The device is found by address at each boot: interface names depend on the provider.
    cat > /usr/local/sbin/bpfeval-vip <<SCRIPT
#!/bin/sh -e
dev=\$(ip -o -4 addr show to $addr/32 | awk '{print \$2; exit}')
[ -n "\$dev" ] || { echo "no interface holds $addr" >&2; exit 1; }
ip addr replace $vip/32 dev "\$dev"
SCRIPT
    chmod +x /usr/local/sbin/bpfeval-vip
    service bpfeval-vip "load balancer VIP $vip" /usr/local/sbin/bpfeval-vip oneshot
    ;;
  backend)
    # Never answer ARP for the VIP, nor use it as an ARP source: only the balancer may.
    printf 'net.ipv4.conf.all.arp_ignore = 1\nnet.ipv4.conf.all.arp_announce = 2\n' > /etc/sysctl.d/90-dsr.conf
    sysctl -q -p /etc/sysctl.d/90-dsr.conf
    service bpfeval-vip "load balancer VIP $vip on lo" "/sbin/ip addr replace $vip/32 dev lo" oneshot
    command -v python3 >/dev/null || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal >/dev/null
    }
    mkdir -p /srv/www
    hostname > /srv/www/index.html
    service bpfeval-http "HTTP test server on :8080" "/usr/bin/python3 -m http.server 8080 --directory /srv/www"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
