#!/bin/sh
# As the official image: a bare `redis-server` (no config file) runs without protected
# mode, so other containers on the network can connect.
set -eu
[ "${1#-}" != "$1" ] && set -- redis-server "$@"
if [ "$1" = redis-server ] && { [ $# -eq 1 ] || [ "${2#-}" != "$2" ]; }; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
