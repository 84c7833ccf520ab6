complete -c knock -s d -l delay -d 'Milliseconds to wait between hits' -r
complete -c knock -l source -d 'Send from this local address' -r
complete -c knock -l interface -d 'Send through this interface' -r
complete -c knock -l wait-open -d 'After knocking, wait until this TCP port accepts a connection; exit 1 if it does not' -r
complete -c knock -l wait-timeout -d 'How long --wait-open tries' -r
complete -c knock -s u -l udp -d 'Make every hit UDP unless it names its protocol'
complete -c knock -s 4 -l ipv4 -d 'Use IPv4 only'
complete -c knock -s 6 -l ipv6 -d 'Use IPv6 only'
complete -c knock -s v -l verbose -d 'Print each hit'
complete -c knock -s h -l help -d 'Print help'
complete -c knock -s V -l version -d 'Print version'
