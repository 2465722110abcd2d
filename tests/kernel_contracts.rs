//! The contract between each GPU kernel's Rust side (`qnn::gpu::Kernel`: the storage buffers
//! and their access, the size of the uniform parameters, the override constants) and its WGSL,
//! read from the shader with naga's reflection. wgpu reports a mismatch only when the pipeline
//! is created, or not at all: a `Params` of the wrong size binds without complaint and the
//! shader reads garbage. Every kernel is checked (`qnn::ops::KERNELS`); a failure names the
//! kernel, the shader file and the binding or constant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, Module, ScalarKind, StorageAccess, TypeInner};
use qnn::backend::Family;
use qnn::gpu::shaders::{self, Shader};
use qnn::gpu::{Access, Kernel};
use qnn::ops::KERNELS;

/// The Rust constants that the shaders get as override constants: a kernel that sets one of
/// these names must set exactly this value (written once, in Rust).
fn rust_constants() -> BTreeMap<&'static str, f64> {
    BTreeMap::from([
        ("WG", qnn::gpu::WG as f64),
        ("EPS", qnn::ops::batchnorm::EPS as f64),
        ("ALPHA", qnn::ops::batchnorm::ALPHA as f64),
    ])
}

fn parse(shader: &Shader) -> (Module, ModuleInfo) {
    let path = format!("shaders/{}", shader.name);
    let module = naga::front::wgsl::parse_str(shader.source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(shader.source, &path)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(shader.source, &path)));
    (module, info)
}

/// Each shader parsed and validated once.
fn modules() -> HashMap<&'static str, (Module, ModuleInfo)> {
    shaders::ALL.iter().map(|s| (s.name, parse(s))).collect()
}

fn access_name(a: StorageAccess) -> &'static str {
    if a == StorageAccess::LOAD {
        "read"
    } else if a == StorageAccess::LOAD | StorageAccess::STORE {
        "read_write"
    } else {
        "another access"
    }
}

fn wgsl_access(a: Access) -> StorageAccess {
    match a {
        Access::Read => StorageAccess::LOAD,
        Access::ReadWrite => StorageAccess::LOAD | StorageAccess::STORE,
    }
}

/// Appends to `failures` every way `k` disagrees with its WGSL.
fn check_kernel(k: &Kernel, module: &Module, info: &ModuleInfo, failures: &mut Vec<String>) {
    let at = format!(
        "kernel {:?} (shaders/{}, entry {})",
        k.name, k.shader.name, k.entry
    );
    let mut fail = |what: String| failures.push(format!("{at}: {what}"));

    let Some(ep_index) = module.entry_points.iter().position(|e| e.name == k.entry) else {
        fail("no such entry point".into());
        return;
    };
    let ep = &module.entry_points[ep_index];
    if ep.stage != naga::ShaderStage::Compute {
        fail(format!("entry point is {:?}, not @compute", ep.stage));
    }
    let uses = info.get_entry_point(ep_index);

    // binding 0: the uniform parameters, of the size of the Rust twin and packed 4-byte fields
    let at0: Vec<_> = module
        .global_variables
        .iter()
        .filter(|(_, g)| {
            g.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == 0)
        })
        .collect();
    match at0.as_slice() {
        [(_, g)] if g.space == AddressSpace::Uniform => {
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).expect("layout");
            let size = layouter[g.ty].size as usize;
            if size != k.params_bytes {
                fail(format!(
                    "binding 0: the WGSL uniform struct is {size} bytes, the kernel's Params \
                     (params_bytes) {} bytes",
                    k.params_bytes
                ));
            }
            if let TypeInner::Struct { members, .. } = &module.types[g.ty].inner {
                for (i, m) in members.iter().enumerate() {
                    let four_bytes = matches!(
                        module.types[m.ty].inner,
                        TypeInner::Scalar(s) if s.width == 4 && s.kind != ScalarKind::Bool
                    );
                    if !four_bytes || m.offset as usize != 4 * i {
                        fail(format!(
                            "binding 0: field {:?} is not a 4-byte scalar at offset {} (the \
                             `#[repr(C)]` twin assumes packed u32/i32/f32 fields)",
                            m.name.as_deref().unwrap_or("?"),
                            4 * i
                        ));
                    }
                }
            } else {
                fail("binding 0: the uniform is not a struct".into());
            }
        }
        [] => fail("binding 0: no uniform declared at @group(0) @binding(0)".into()),
        [(_, g)] => fail(format!("binding 0: declared in {:?}, not uniform", g.space)),
        _ => fail("binding 0: declared more than once".into()),
    }

    // the resources the entry point uses: the uniform at 0, storage buffers within 1..=n
    let n = k.storage.len();
    let mut used: BTreeSet<u32> = BTreeSet::new();
    for (h, g) in module.global_variables.iter() {
        let Some(b) = &g.binding else { continue };
        if uses[h].is_empty() {
            continue;
        }
        let name = g.name.as_deref().unwrap_or("?");
        let where_ = format!("@group({}) @binding({}) `{name}`", b.group, b.binding);
        if b.group != 0 {
            fail(format!("{where_}: used, but the kernels bind group 0 only"));
            continue;
        }
        match g.space {
            AddressSpace::Uniform if b.binding == 0 => {}
            AddressSpace::Storage { access } if (1..=n as u32).contains(&b.binding) => {
                used.insert(b.binding);
                let want = wgsl_access(k.storage[b.binding as usize - 1]);
                if access != want {
                    fail(format!(
                        "binding {}: `{name}` is var<storage, {}> in the WGSL, the kernel \
                         declares {:?}",
                        b.binding,
                        access_name(access),
                        k.storage[b.binding as usize - 1]
                    ));
                }
            }
            AddressSpace::Storage { .. } => fail(format!(
                "binding {}: `{name}` is used, but the kernel declares storage bindings 1..={n} \
                 only",
                b.binding
            )),
            space => fail(format!(
                "{where_}: used, in {space:?}: not what the kernels bind"
            )),
        }
    }
    // a binding in the list that the entry point leaves unused (the launchers bind the same
    // buffers to all the kernels of a family) is still declared so in the WGSL: the list
    // matches the WGSL's declarations 1..=n, and holds every storage buffer the entry point uses
    for (i, &a) in k.storage.iter().enumerate() {
        let b = i as u32 + 1;
        if used.contains(&b) {
            continue;
        }
        let declared: Vec<_> = module
            .global_variables
            .iter()
            .filter(|(_, g)| {
                g.binding
                    .as_ref()
                    .is_some_and(|r| r.group == 0 && r.binding == b)
            })
            .collect();
        if declared.is_empty() {
            fail(format!(
                "binding {b}: the kernel declares {a:?}, the WGSL nothing"
            ));
        }
        for (_, g) in declared {
            let name = g.name.as_deref().unwrap_or("?");
            match g.space {
                AddressSpace::Storage { access } if access == wgsl_access(a) => {}
                AddressSpace::Storage { access } => fail(format!(
                    "binding {b}: `{name}` is var<storage, {}> in the WGSL, the kernel declares \
                     {a:?}",
                    access_name(access)
                )),
                space => fail(format!(
                    "binding {b}: `{name}` is in {space:?}, the kernel declares storage {a:?}"
                )),
            }
        }
    }

    // override constants: each one the kernel sets exists, with a value its type holds exactly
    let known = rust_constants();
    let mut seen = BTreeSet::new();
    for &(name, value) in k.constants {
        if !seen.insert(name) {
            fail(format!("override {name}: set twice"));
        }
        let Some((_, o)) = module
            .overrides
            .iter()
            .find(|(_, o)| o.name.as_deref() == Some(name))
        else {
            fail(format!(
                "override {name}: the kernel sets it, the WGSL has no such override"
            ));
            continue;
        };
        let exact = match module.types[o.ty].inner {
            TypeInner::Scalar(s) => match s.kind {
                ScalarKind::Uint => {
                    value.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&value)
                }
                ScalarKind::Sint => {
                    value.fract() == 0.0 && (i32::MIN as f64..=i32::MAX as f64).contains(&value)
                }
                ScalarKind::Float => value as f32 as f64 == value,
                ScalarKind::Bool => value == 0.0 || value == 1.0,
                _ => false,
            },
            _ => false,
        };
        if !exact {
            fail(format!(
                "override {name}: {value} does not convert exactly to its WGSL type"
            ));
        }
        if let Some(&rust) = known.get(name) {
            if value != rust {
                fail(format!(
                    "override {name}: set to {value}, the Rust constant is {rust}"
                ));
            }
        }
    }
    // ... and each one without a default that the entry point reaches is set (else creating
    // the pipeline fails): what remains of the module with this entry point alone
    let mut alone = module.clone();
    alone.entry_points.retain(|e| e.name == k.entry);
    naga::compact::compact(&mut alone, naga::compact::KeepUnused::No);
    for (_, o) in alone.overrides.iter() {
        let name = o.name.as_deref().unwrap_or("?");
        if o.init.is_none() && !k.constants.iter().any(|c| c.0 == name) {
            fail(format!(
                "override {name}: the entry point needs it (no default), the kernel does not set it"
            ));
        }
    }
    // a kernel that indexes its threads with `linear_id` (WG threads a workgroup: `grid_1d`)
    // runs WG × 1 × 1 threads a workgroup
    if alone
        .functions
        .iter()
        .any(|(_, f)| f.name.as_deref() == Some("linear_id"))
    {
        let ep = &alone.entry_points[0];
        let x_is_wg = ep.workgroup_size_overrides.is_some_and(|o| {
            o[0].is_some_and(|e| {
                matches!(alone.global_expressions[e], naga::Expression::Override(h)
                    if alone.overrides[h].name.as_deref() == Some("WG"))
            }) && o[1].is_none()
                && o[2].is_none()
        });
        if !x_is_wg || ep.workgroup_size[1..] != [1, 1] {
            fail(format!(
                "uses linear_id, so its @workgroup_size must be (WG, 1, 1); it is {:?} with \
                 overrides {:?}",
                ep.workgroup_size, ep.workgroup_size_overrides
            ));
        }
    }
}

#[test]
fn every_kernel_matches_its_wgsl() {
    let modules = modules();
    let mut failures = Vec::new();
    for k in KERNELS {
        match modules.get(k.shader.name) {
            Some((module, info)) => check_kernel(k, module, info, &mut failures),
            None => failures.push(format!(
                "kernel {:?}: shaders/{} is not in qnn::gpu::shaders::ALL",
                k.name, k.shader.name
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} kernel contract failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_entry_point_has_a_kernel() {
    let mut missing = Vec::new();
    for (name, (module, _)) in modules() {
        for ep in &module.entry_points {
            if !KERNELS
                .iter()
                .any(|k| k.shader.name == name && k.entry == ep.name)
            {
                missing.push(format!("shaders/{name}: entry {}", ep.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "entry points no kernel in qnn::ops::KERNELS runs:\n{}",
        missing.join("\n")
    );
}

#[test]
fn kernels_are_listed_once_and_named_apart() {
    let mut names = BTreeSet::new();
    for (i, k) in KERNELS.iter().enumerate() {
        assert!(
            !KERNELS[..i].iter().any(|o| std::ptr::eq(*o, *k)),
            "kernel {:?} (shaders/{}) is listed twice in qnn::ops::KERNELS",
            k.name,
            k.shader.name
        );
        assert!(
            names.insert(k.name),
            "two kernels are named {:?}: profiles could not tell them apart",
            k.name
        );
    }
}

/// `qnn bench train` prints these names and the docs quote them.
#[test]
fn family_labels_are_the_documented_ones() {
    let labels: Vec<&str> = Family::ALL.iter().map(|f| f.label()).collect();
    assert_eq!(
        labels,
        [
            "conv forward",
            "conv grad input",
            "conv grad weight",
            "batch norm",
            "batch norm + act",
            "quantizers",
            "pooling",
            "optimizer",
            "data",
            "loss",
            "dense",
        ]
    );
    // batch norm + act is the CPU backend's fused pass; the GPU runs the plain ops
    for f in Family::ALL
        .into_iter()
        .filter(|&f| f != Family::BatchNormAct)
    {
        assert!(
            KERNELS.iter().any(|k| k.family == f),
            "no kernel in the family {:?}",
            f.label()
        );
    }
}
