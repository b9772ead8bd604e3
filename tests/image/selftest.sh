#!/bin/sh
# Runs inside the booted image as the kernel command line's systemd.run= unit (root), prints
# "SELFTEST key=value" lines on the serial console for tests/image/test_boot.py, then the
# unit's success action powers the VM off. It waits on states with deadlines, never forever.
# Lines go to the console and to the boot partition (readable with mtype after power-off).
say() {
    echo "SELFTEST $*" > /dev/console
    echo "SELFTEST $*" >> /boot/firmware/selftest.log
}
now() { cut -d' ' -f1 /proc/uptime; }
secs() { cut -d. -f1 /proc/uptime; }
# until SECONDS COMMAND...: retry COMMAND every second until it succeeds or SECONDS pass
until_ok() {
    deadline=$(( $(secs) + $1 )); shift
    while [ "$(secs)" -lt "$deadline" ]; do
        "$@" && return 0
        sleep 1
    done
    return 1
}
is_active() { [ "$(prop appliance.service ActiveState)" = active ]; }
has_status() { [ -n "$(prop appliance.service StatusText)" ]; }
restarted() {
    newpid=$(prop appliance.service MainPID)
    [ "$newpid" != "$pid" ] && [ "$newpid" != 0 ] && is_active
}
prop() { systemctl show -p "$2" --value "$1"; }
say "begin uptime=$(now)"

# systemd.run= boots *into* this unit instead of default.target: start the normal boot now.
systemctl start --no-block multi-user.target

# --- appliance reaches active (Type=notify: only after READY=1) -------------------------------
t0=$(secs)
until_ok 300 is_active
say "appliance_state=$(prop appliance.service ActiveState) waited=$(( $(secs) - t0 ))s uptime=$(now)"
say "ready_monotonic_us=$(prop appliance.service ActiveEnterTimestampMonotonic) start_monotonic_us=$(prop appliance.service ExecMainStartTimestampMonotonic)"

# the first-boot unit is ordered before appliance.service, so it has finished by now
# --- first-boot import -----------------------------------------------------------------------
say "firstboot_result=$(prop appliance-firstboot.service Result) firstboot_status=$(prop appliance-firstboot.service ExecMainStatus) firstboot_ran=$(prop appliance-firstboot.service ExecMainStartTimestampMonotonic)"
if grep -rqs "$(cat /boot/firmware/selftest.secret 2>/dev/null || echo no-secret-given)" \
        /boot/firmware/appliance.toml* /etc/appliance/device.toml; then
    say "secret_on_boot_partition=yes"
else
    say "secret_on_boot_partition=no"
fi
say "boot_files=$(cd /boot/firmware && ls appliance.toml* 2>/dev/null | tr '\n' ',')"
say "hostname=$(hostname)"
say "credentials=$(ls /etc/appliance/credentials | tr '\n' ',') mode=$(stat -c %a /etc/appliance/credentials/* 2>/dev/null | sort -u | tr '\n' ',')"

until_ok 60 has_status
say "status_text=$(prop appliance.service StatusText)"
say "credential_files=$(ls /run/credentials/appliance.service 2>/dev/null | tr '\n' ',')"
say "user=$(stat -c %U "/proc/$(prop appliance.service MainPID)")"

if [ "$(prop appliance.service ActiveState)" = active ]; then
# --- watchdog: a frozen daemon is killed and restarted ---------------------------------------
pid=$(prop appliance.service MainPID)
restarts=$(prop appliance.service NRestarts)
kill -STOP "$pid"
say "froze pid=$pid nrestarts=$restarts uptime=$(now)"
t0=$(secs)
until_ok 300 restarted
say "after_freeze pid=$newpid nrestarts=$(prop appliance.service NRestarts) state=$(prop appliance.service ActiveState) waited=$(( $(secs) - t0 ))s"
journalctl -b -u appliance.service --no-pager -o cat | grep -i -m3 'watchdog' | \
    while read -r line; do say "journal: $line"; done

# --- a crash (SIGABRT, as a panicking SDK raises) is restarted, counted and shown --------------
pid=$(prop appliance.service MainPID)
kill -ABRT "$pid"
say "aborted pid=$pid uptime=$(now)"
t0=$(secs)
until_ok 120 restarted
say "after_abort pid=$newpid nrestarts=$(prop appliance.service NRestarts) state=$(prop appliance.service ActiveState) waited=$(( $(secs) - t0 ))s"
shows_crashes() { prop appliance.service StatusText | grep -q "crashes since boot"; }
until_ok 60 shows_crashes
say "status_after_crashes=$(prop appliance.service StatusText)"

# --- systemctl stop finishes quickly ----------------------------------------------------------
t1=$(now)
systemctl stop appliance.service
t2=$(now)
say "stop_seconds=$(echo "$t1 $t2" | awk '{printf "%.2f", $2 - $1}') stop_result=$(prop appliance.service Result)"

else
    say "skipping watchdog and stop checks: appliance.service is not active"
fi

# --- diagnostics ------------------------------------------------------------------------------
say "exposure=$(systemd-analyze security appliance.service 2>/dev/null | tail -1)"
systemctl --failed --no-legend --plain | while read -r line; do say "failed_unit: $line"; done
journalctl -b -u appliance.service -u appliance-firstboot.service --no-pager -o short-monotonic \
    | tail -40 | while read -r line; do say "log: $line"; done
say "end uptime=$(now)"
