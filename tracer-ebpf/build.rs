//! Rebuilds the eBPF object when the `bpf-linker` binary changes: cargo cannot
//! see that dependency on its own. Declares the `bpf_target_arch` cfg that the
//! build sets (the architecture whose kernel structures the programs read).

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(bpf_target_arch, values(\"x86_64\", \"aarch64\", \"arm\", \"riscv64\", \"powerpc64\", \"s390x\", \"mips\", \"loongarch64\"))"
    );
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => {
            println!("cargo:warning=bpf-linker not found on PATH; run `cargo xtask setup` first")
        }
    }
}
