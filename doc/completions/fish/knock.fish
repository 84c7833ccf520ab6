complete -c knock -l secret-file -d 'Knock the door\'s current rotating sequence, derived from this secret file' -r -F
complete -c knock -l door -d 'The door to knock on (rotating sequences and SPA are per door)' -r
complete -c knock -l step -d 'Rotating sequence: its step, as in the door\'s config' -r
complete -c knock -l length -d 'Rotating sequence: its length (2 to 8), as in the door\'s config' -r
complete -c knock -l port-range -d 'Rotating sequence: its port range, as in the door\'s config' -r
complete -c knock -l key -d 'SPA key: an Ed25519 secret key file (from --spa-keygen) or an HMAC shared secret file' -r -F
complete -c knock -l spa-port -d 'SPA: the door\'s SPA port' -r
complete -c knock -l spa-address -d 'SPA: ask the door to open for this address instead of the packet\'s source (behind NAT)' -r
complete -c knock -l spa-keygen -d 'Write a new Ed25519 key pair: FILE (secret, for --key) and FILE.pub (for the server)' -r -F
complete -c knock -s d -l delay -d 'Milliseconds to wait between hits' -r
complete -c knock -l source -d 'Send from this local address' -r
complete -c knock -l interface -d 'Send through this interface' -r
complete -c knock -l wait-open -d 'After knocking, wait until this TCP port accepts a connection; exit 1 if it does not' -r
complete -c knock -l wait-timeout -d 'How long --wait-open tries' -r
complete -c knock -l spa -d 'Send one single-packet authorization datagram instead of knocks (needs --key, --door)'
complete -c knock -s u -l udp -d 'Make every hit UDP unless it names its protocol'
complete -c knock -s 4 -l ipv4 -d 'Use IPv4 only'
complete -c knock -s 6 -l ipv6 -d 'Use IPv6 only'
complete -c knock -s v -l verbose -d 'Print each hit'
complete -c knock -s h -l help -d 'Print help'
complete -c knock -s V -l version -d 'Print version'
