//! The OpenWrt package (`packaging/openwrt/`), which cannot be built here (no OpenWrt SDK): its
//! Makefile evaluated by GNU make against stand-ins for OpenWrt's include files and its install
//! recipe run into a directory, the procd init script read by `sh -n` and run against
//! stand-ins for procd's shell functions, and the packaged config loaded by `knockd check`.

mod util;

use std::path::Path;
use std::process::Command;

use util::{KNOCKD, TempDir, mode, repo};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The names the Makefile takes from OpenWrt, defined only as far as evaluating it needs: the
/// install commands as OpenWrt's rules.mk defines them, `BuildPackage` as two targets (the
/// package's variables, its install recipe into `$(DEST)`), and the Rust names of the packages
/// feed's rust-package.mk with its defaults. What it cannot show: that the SDK builds it.
fn openwrt_stand_ins(top: &Path) {
    write(
        &top.join("rules.mk"),
        "INCLUDE_DIR:=$(TOPDIR)/include\nSTAGING_DIR:=$(TOPDIR)/staging_dir/target\n\
         INSTALL_DIR:=install -d -m0755\nINSTALL_BIN:=install -m0755\n\
         INSTALL_DATA:=install -m0644\nINSTALL_CONF:=install -m0600\n",
    );
    write(
        &top.join("include/package.mk"),
        "define BuildPackage\n$(eval $(Package/$(1)))\n\
         $(1)-info:\n\t@echo 'DEPENDS=$(DEPENDS)'\n\t@echo 'USERID=$(USERID)'\n\
         \t@echo 'PROFILE=$(CARGO_PKG_PROFILE)'\n\t@echo 'VARS=$$(CARGO_PKG_VARS)'\n\
         \t@echo 'CONFFILES=$(strip $(Package/$(1)/conffiles))'\n\
         $(1)-install:\n\t$$(call Package/$(1)/install,$$(DEST))\nendef\n",
    );
    write(
        &top.join("feeds/packages/lang/rust/rust-package.mk"),
        "RUST_ARCH_DEPENDS:=@(aarch64||arm||mips||mipsel||x86_64)\nCARGO_PKG_PROFILE:=release\n\
         CARGO_PKG_VARS=CARGO_HOME=$(TOPDIR)/dl/cargo\ndefine RustBinPackage\nendef\n",
    );
}

/// Runs `make TARGET` on the package's Makefile against the stand-ins; its stdout.
fn make(top: &Path, target: &str, extra: &[String]) -> String {
    let out = Command::new("make")
        .arg("-C")
        .arg(repo("packaging/openwrt"))
        .arg(format!("TOPDIR={}", top.display()))
        .args(extra)
        .arg(target)
        .output()
        .expect("GNU make (scripts/install-deps installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "make {target}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package's files as its install recipe lays them out, from the binaries under test:
/// under `root` in the directory returned.
fn installed_tree(tag: &str) -> TempDir {
    let dir = TempDir::new(&format!("openwrt-{tag}"));
    let top = dir.join("openwrt");
    openwrt_stand_ins(&top);
    let built = dir.join("ipkg-install/bin");
    std::fs::create_dir_all(&built).unwrap();
    std::fs::copy(KNOCKD, built.join("knockd")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_knock"), built.join("knock")).unwrap();
    let root = dir.join("root");
    let vars = [format!("PKG_INSTALL_DIR={}", dir.join("ipkg-install").display()), format!("DEST={}", root.display())];
    make(&top, "knockd-install", &vars);
    dir
}

#[test]
fn the_package_builds_small_on_rust_package_mk_against_libnftnl_and_libmnl() {
    let makefile = std::fs::read_to_string(repo("packaging/openwrt/Makefile")).unwrap();
    assert!(makefile.contains("include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk"), "{makefile}");
    assert!(makefile.contains("$(eval $(call RustBinPackage,knockd))"), "{makefile}");
    let cargo = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let version = cargo.lines().find_map(|l| l.strip_prefix("version = ")).unwrap().trim_matches('"');
    assert!(makefile.contains(&format!("PKG_VERSION:={version}\n")), "PKG_VERSION is not Cargo.toml's {version}");
    assert!(cargo.contains("[profile.small]"), "the profile the package builds with");

    let dir = TempDir::new("openwrt-info");
    openwrt_stand_ins(dir.path());
    let info = make(dir.path(), "knockd-info", &[]);
    let deps: Vec<&str> = info.lines().find_map(|l| l.strip_prefix("DEPENDS=")).unwrap().split(' ').collect();
    for dep in ["+libnftnl", "+libmnl", "+kmod-nft-core", "+kmod-nft-nat"] {
        assert!(deps.contains(&dep), "DEPENDS lacks {dep}: {info}");
    }
    assert!(deps.iter().any(|d| d.starts_with("@(") && d.contains("x86_64")), "RUST_ARCH_DEPENDS: {info}");
    assert!(info.contains("PROFILE=small\n"), "{info}");
    assert!(info.contains(&format!("LIBNFTNL_LIB_DIR={}/staging_dir/target/usr/lib", dir.path().display())), "{info}");
    assert!(info.contains("CONFFILES=/etc/knockd.yaml\n"), "{info}");
    assert!(info.contains("USERID=knockd:knockd\n"), "{info}");
}

#[test]
fn the_package_installs_the_daemon_the_client_the_config_and_the_init_script() {
    let tree = installed_tree("install");
    let root = tree.join("root");
    assert_eq!(mode(&root.join("usr/sbin/knockd")), 0o755);
    assert_eq!(mode(&root.join("usr/bin/knock")), 0o755);
    assert_eq!(mode(&root.join("etc/init.d/knockd")), 0o755);
    // Readable by the user knockd runs as after start, for SIGHUP; writable by root only.
    assert_eq!(mode(&root.join("etc/knockd.yaml")), 0o644);
    let init = std::fs::read(root.join("etc/init.d/knockd")).unwrap();
    assert_eq!(init, std::fs::read(repo("packaging/openwrt/files/knockd.init")).unwrap());
    // The installed daemon loads the installed config.
    let out = Command::new(root.join("usr/sbin/knockd"))
        .args(["check", "-c"])
        .arg(root.join("etc/knockd.yaml"))
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid, 2 door(s)"), "{out:?}");
}

#[test]
fn the_init_script_is_valid_sh() {
    let out = Command::new("sh").arg("-n").arg(repo("packaging/openwrt/files/knockd.init")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Sources the init script (as /etc/rc.common does) with procd's functions, `logger` and `ln`
/// recording their calls, `CONFIG` set to `config`, and runs `calls` (function names) one after
/// the other; the exit status of the last, and the recorded calls, one per line.
fn procd(config: &Path, calls: &[&str]) -> (i32, String) {
    let dir = TempDir::new("openwrt-procd");
    let record = dir.join("calls");
    let script = "record() { printf '%s\\n' \"$*\" >> \"$RECORD\"; }
        for f in procd_open_instance procd_set_param procd_append_param procd_close_instance \
            procd_send_signal procd_add_raw_trigger procd_add_interface_trigger logger ln; do
            eval \"$f() { record $f \\\"\\$@\\\"; }\"
        done
        . \"$INIT\"
        CONFIG=\"$CONFIG_UNDER_TEST\"
        status=0
        for call in \"$@\"; do \"$call\"; status=$?; done
        exit $status";
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .args(calls)
        .env("RECORD", &record)
        .env("INIT", repo("packaging/openwrt/files/knockd.init"))
        .env("CONFIG_UNDER_TEST", config)
        .output()
        .unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    (out.status.code().unwrap(), recorded.replace(&config.display().to_string(), "CONFIG"))
}

#[test]
fn the_init_script_runs_the_daemon_under_procd_and_reloads_it_with_sighup() {
    let dir = TempDir::new("openwrt-edited");
    let example = std::fs::read_to_string(repo("packaging/openwrt/files/knockd.yaml")).unwrap();
    let config = dir.write("knockd.yaml", example.split_once('\n').unwrap().1);

    let (status, calls) = procd(&config, &["start_service"]);
    assert_eq!(status, 0, "{calls}");
    let expected = "procd_open_instance\nprocd_set_param command /usr/sbin/knockd -c CONFIG\n\
                    procd_set_param file CONFIG\nprocd_set_param respawn\nprocd_set_param stdout 1\n\
                    procd_set_param stderr 1\nprocd_close_instance\n";
    assert_eq!(calls, expected);
    let (status, calls) = procd(&config, &["reload_service"]);
    assert_eq!((status, calls.as_str()), (0, "procd_send_signal knockd * HUP\n"));
    let (status, calls) = procd(&config, &["service_triggers"]);
    assert_eq!((status, calls.as_str()), (0, "procd_add_raw_trigger interface.* 1000 /etc/init.d/knockd reload\n"));

    // What procd runs is what the package installs.
    let init = std::fs::read_to_string(repo("packaging/openwrt/files/knockd.init")).unwrap();
    assert!(init.contains("\nPROG=/usr/sbin/knockd\n") && init.contains("\nCONFIG=/etc/knockd.yaml\n"), "{init}");
    let tree = installed_tree("paths");
    let root = tree.join("root");
    assert!(root.join("usr/sbin/knockd").is_file() && root.join("etc/knockd.yaml").is_file());
}

#[test]
fn the_init_script_does_not_start_the_packaged_example() {
    let (status, calls) = procd(&repo("packaging/openwrt/files/knockd.yaml"), &["start_service"]);
    assert_eq!(status, 1, "{calls}");
    assert!(!calls.contains("procd_open_instance"), "{calls}");
    assert!(calls.starts_with("logger -s -t knockd -p daemon.warn not started: CONFIG is still the packaged example"));
    assert!(calls.contains("delete its first line"), "{calls}");
}

#[test]
fn the_packaged_config_loads_inside_fw4_with_a_dnat_and_a_pinhole() {
    let out = Command::new(KNOCKD)
        .args(["check", "-c"])
        .arg(repo("packaging/openwrt/files/knockd.yaml"))
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // 4: valid, but this machine's own firewall drops a port the router door opens; that
    // says nothing about the file.
    assert!(matches!(out.status.code(), Some(0 | 4)), "{out:?}");
    assert!(text.contains("valid, 2 door(s)"), "{text}");
    assert!(text.contains("opens forwards 2522/tcp to 192.168.1.10:22, forwards to [2001:db8:8::10]:22/tcp for 1m"));
    assert!(text.contains("table inet fw4 {") && text.contains("jumped to first thing from chain input_wan"), "{text}");
    assert!(text.contains("ip saddr @knockd_nas_v4 tcp dport 2522 dnat ip to 192.168.1.10:22"), "{text}");
    assert!(text.contains("ip6 daddr 2001:db8:8::10 tcp dport 22 drop"), "{text}");
}
