#!/bin/bash
# mmdebstrap customize hook: install the appliance into the arm64 root file system at "$1".
# Runs on the build host inside mmdebstrap's namespace; binaries in the chroot run through
# qemu-user. "$2" is the staging folder prepared by image/build.
set -euo pipefail
root=$1
stage=$2
step() { printf '[customize %s] %s\n' "$(date +%T)" "$*"; }
# A clean environment inside the chroot: nothing of the build host's (PIP_*, proxies) leaks in.
in_root() {
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

step "appliance units, sysusers, tmpfiles, udev rules"
install -m 0644 "$stage/systemd/appliance.service" "$root/usr/lib/systemd/system/appliance.service"
install -m 0644 "$stage/systemd/appliance-firstboot.service" \
    "$root/usr/lib/systemd/system/appliance-firstboot.service"
install -D -m 0644 "$stage/systemd/appliance.sysusers" "$root/usr/lib/sysusers.d/appliance.conf"
install -D -m 0644 "$stage/systemd/appliance.tmpfiles" "$root/usr/lib/tmpfiles.d/appliance.conf"
install -D -m 0644 "$stage/systemd/60-appliance.rules" "$root/usr/lib/udev/rules.d/60-appliance.rules"
in_root systemd-sysusers
in_root systemd-tmpfiles --create /usr/lib/tmpfiles.d/appliance.conf

step "python venv with the appliance (wheels built/downloaded on the host)"
rm -rf "$root/tmp/wheels"
cp -r "$stage/wheels" "$root/tmp/wheels"
in_root python3 -m venv --system-site-packages /opt/appliance/venv
native=$(cat "$stage/native-sdists" 2>/dev/null || true)
if [ -n "$native" ]; then
    # C extensions published only as source (pyalsaaudio): compile them here once, under
    # qemu-user, then remove the compiler again. image/build caches the resulting wheels.
    step "compiling $native for arm64 (cached afterwards)"
    # (the compiler came in through mmdebstrap --include: no network from inside the chroot)
    mkdir -p "$root/tmp/native-out"
    for sdist in $native; do
        in_root /opt/appliance/venv/bin/pip wheel --no-deps --no-build-isolation --no-index \
            -w /tmp/native-out "/tmp/wheels/$sdist"
    done
    cp "$root"/tmp/native-out/*.whl "$stage/native-built/"
    cp "$root"/tmp/native-out/*.whl "$root/tmp/wheels/"
    for sdist in $native; do rm -f "$root/tmp/wheels/$sdist"; done
    in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y --autoremove \
        $(cat "$stage/native-build-deps")
fi
in_root /opt/appliance/venv/bin/pip install --no-index --find-links /tmp/wheels --no-compile \
    --disable-pip-version-check "$(cat "$stage/project-requirement")"
in_root /opt/appliance/venv/bin/pip check || true
rm -rf "$root/tmp/wheels" "$root/tmp/native-out"
in_root /opt/appliance/venv/bin/pip freeze --all > "$stage/pip-freeze.txt"

step "configuration"
install -d -m 0755 "$root/etc/appliance"
install -m 0644 "$stage/appliance.toml" "$root/etc/appliance/appliance.toml"
install -m 0644 "$stage/README.md" "$root/opt/appliance/README.md" 2>/dev/null || true
echo kiosk > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkiosk\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
    > "$root/etc/hosts"
cat > "$root/etc/fstab" <<FSTAB
# <device>                 <mount>         <type> <options>                          <dump> <pass>
PARTUUID=${DISK_ID}-02     /               ext4   defaults,noatime,x-systemd.growfs  0      1
PARTUUID=${DISK_ID}-01     /boot/firmware  vfat   defaults,noatime,umask=0077        0      2
FSTAB
install -d "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/10-wired.network" <<NET
[Match]
Name=e*

[Network]
DHCP=yes
NET
# Wi-Fi (Zero 2 W has no Ethernet): wlan0 is configured by the wpa_supplicant.conf that
# `appliance provision --wifi` puts on the boot partition and the first-boot unit imports.
if [ -e "$root/usr/lib/systemd/system/wpa_supplicant@.service" ] || \
   [ -e "$root/lib/systemd/system/wpa_supplicant@.service" ]; then
    cat > "$root/etc/systemd/network/20-wireless.network" <<NET
[Match]
Name=wl*

[Network]
DHCP=yes
NET
    install -d "$root/etc/systemd/system/wpa_supplicant@.service.d"
    cat > "$root/etc/systemd/system/wpa_supplicant@.service.d/appliance.conf" <<UNIT
# Start only once a Wi-Fi config was imported from the boot partition (no failed unit otherwise).
[Unit]
ConditionPathExists=/etc/wpa_supplicant/wpa_supplicant-%I.conf
After=appliance-firstboot.service
UNIT
    # Started by udev when wlan0 appears (not enabled in multi-user.target: that would make
    # boot wait 90 s for a wlan0 device on boards or VMs without one, delaying the appliance).
    cat > "$root/etc/udev/rules.d/70-appliance-wifi.rules" <<RULE
SUBSYSTEM=="net", ACTION=="add", KERNEL=="wlan0", TAG+="systemd", ENV{SYSTEMD_WANTS}+="wpa_supplicant@wlan0.service"
RULE
fi
in_root systemctl enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service appliance.service appliance-firstboot.service
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# Journal on disk, size-capped (SD cards): the first place to look when a kiosk misbehaves.
install -d "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\nSystemMaxUse=64M\n' \
    > "$root/etc/systemd/journald.conf.d/appliance.conf"

if [ -d "$stage/overlay" ]; then
    step "overlay"
    cp -a "$stage/overlay/." "$root/"
fi

step "initramfs (once, with MODULES=list: small and fast under emulation)"
rm -f "$root/usr/sbin/update-initramfs"
in_root dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
cat "$stage/initramfs-modules" >> "$root/etc/initramfs-tools/modules"
in_root update-initramfs -c -k all

step "build info"
{
    cat "$stage/build-info"
    echo "# Debian packages (dpkg-query)"
    in_root dpkg-query -W -f='deb ${Package} ${Version}\n'
    echo "# Python packages in /opt/appliance/venv"
    sed 's/^/pip /' "$stage/pip-freeze.txt"
} > "$root/etc/appliance/build-info"
chmod 0644 "$root/etc/appliance/build-info"
cp "$root/etc/appliance/build-info" "$stage/build-info.out"
cp "$root"/boot/vmlinuz-* "$stage/vmlinuz"
cp "$root"/boot/initrd.img-* "$stage/initrd.img"

step "clean"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
rm -f "$root/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$root/etc/apt/apt.conf.d/99mmdebstrap"
# Each device gets its own machine id at first boot.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
step "done"
