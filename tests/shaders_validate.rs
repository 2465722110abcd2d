//! Every WGSL file parses and validates with naga; an error names the file and line.

#[test]
fn every_shader_parses_and_validates() {
    let mut failures = Vec::new();
    for shader in qnn::gpu::shaders::ALL {
        let module = match naga::front::wgsl::parse_str(shader.source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(
                    e.emit_to_string_with_path(shader.source, &format!("shaders/{}", shader.name)),
                );
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        if let Err(e) = v.validate(&module) {
            failures.push(
                e.emit_to_string_with_path(shader.source, &format!("shaders/{}", shader.name)),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // common.wgsl is appended to every file (and validated with each)
        .filter(|n| n.ends_with(".wgsl") && n != "common.wgsl")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = qnn::gpu::shaders::ALL
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}
