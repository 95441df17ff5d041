fn main() {
    println!("cargo:rerun-if-changed=src/long_double.c");
    cc::Build::new()
        .file("src/long_double.c")
        .warnings(true)
        .compile("ferrokv_long_double");
}
