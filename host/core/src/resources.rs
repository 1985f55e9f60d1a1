//! Resource quantities: what pods request and what nodes offer.
//!
//! CPU is kept in millicores and memory and storage in bytes, as integers, so
//! sums and comparisons are exact. Extended resources (`nvidia.com/gpu`, …)
//! are counted in whole units.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sym::Sym;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const PODS: &str = "pods";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const NVIDIA_GPU: &str = "nvidia.com/gpu";
pub const AMD_GPU: &str = "amd.com/gpu";
pub const AWS_NEURON: &str = "aws.amazon.com/neuron";

pub const MIB: i64 = 1 << 20;
pub const GIB: i64 = 1 << 30;

/// A set of resource amounts. Missing extended resources are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// Millicores.
    pub cpu: i64,
    /// Bytes.
    pub memory: i64,
    pub pods: i64,
    /// Bytes.
    pub ephemeral: i64,
    /// Sorted by name; never holds a zero.
    pub extended: Vec<(Sym, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("`{0}` is not a Kubernetes quantity; write e.g. `500m`, `2`, `512Mi` or `1Gi`")]
    Malformed(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses a Kubernetes quantity into thousandths of its unit, rounding up
/// (Kubernetes rounds requests up, never down).
pub fn parse_milli(text: &str) -> Result<i64, QuantityError> {
    i64::try_from(parse_milli_wide(text)?).map_err(|_| QuantityError::Overflow(text.to_string()))
}

fn parse_milli_wide(text: &str) -> Result<i128, QuantityError> {
    let bad = || QuantityError::Malformed(text.to_string());
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let (negative, number) = match number.as_bytes()[0] {
        b'-' => (true, &number[1..]),
        b'+' => (false, &number[1..]),
        _ => (false, number),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // value = digits × 10^exp10 × 2^exp2, computed in i128 then scaled to milli.
    let digits: i128 = format!("{whole}{frac}")
        .trim_start_matches('0')
        .parse()
        .or_else(|_| {
            if whole.bytes().chain(frac.bytes()).all(|b| b == b'0') {
                Ok(0)
            } else {
                Err(bad())
            }
        })?;
    let mut exp10: i32 = -(frac.len() as i32) + 3;
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        e if e.starts_with(['e', 'E']) => {
            exp10 += e[1..].parse::<i32>().map_err(|_| bad())?;
        }
        _ => return Err(bad()),
    }
    let overflow = || QuantityError::Overflow(text.to_string());
    let mut value = digits.checked_mul(1i128 << exp2).ok_or_else(overflow)?;
    if exp10 >= 0 {
        value = value
            .checked_mul(10i128.checked_pow(exp10 as u32).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
    } else {
        let div = 10i128.checked_pow((-exp10) as u32).unwrap_or(i128::MAX);
        value = (value + div - 1) / div;
    }
    Ok(if negative { -value } else { value })
}

/// Parses a quantity into whole units, rounding up.
pub fn parse_units(text: &str) -> Result<i64, QuantityError> {
    let milli = parse_milli_wide(text)?;
    i64::try_from(milli.div_euclid(1000) + i128::from(milli.rem_euclid(1000) != 0))
        .map_err(|_| QuantityError::Overflow(text.to_string()))
}

impl Resources {
    pub fn new(cpu_milli: i64, memory_bytes: i64) -> Self {
        Self {
            cpu: cpu_milli,
            memory: memory_bytes,
            ..Self::default()
        }
    }

    /// Reads a Kubernetes resource list (`{"cpu": "500m", "memory": "1Gi"}`).
    pub fn from_list<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QuantityError> {
        let mut r = Resources::default();
        for (name, quantity) in list {
            match name {
                CPU => r.cpu = parse_milli(quantity)?,
                _ => r.set(name, parse_units(quantity)?),
            }
        }
        Ok(r)
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.cpu,
            MEMORY => self.memory,
            PODS => self.pods,
            EPHEMERAL_STORAGE => self.ephemeral,
            _ => self.extended(Sym::new(name)),
        }
    }

    pub fn extended(&self, name: Sym) -> i64 {
        self.extended
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |&(_, v)| v)
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            CPU => self.cpu = value,
            MEMORY => self.memory = value,
            PODS => self.pods = value,
            EPHEMERAL_STORAGE => self.ephemeral = value,
            _ => {
                let name = Sym::new(name);
                match self.extended.binary_search_by(|(n, _)| n.cmp(&name)) {
                    Ok(i) if value == 0 => {
                        self.extended.remove(i);
                    }
                    Ok(i) => self.extended[i].1 = value,
                    Err(_) if value == 0 => {}
                    Err(i) => self.extended.insert(i, (name, value)),
                }
            }
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.cpu += other.cpu;
        self.memory += other.memory;
        self.pods += other.pods;
        self.ephemeral += other.ephemeral;
        for &(name, v) in &other.extended {
            let cur = self.extended(name);
            self.set(name.as_str(), cur + v);
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.cpu -= other.cpu;
        self.memory -= other.memory;
        self.pods -= other.pods;
        self.ephemeral -= other.ephemeral;
        for &(name, v) in &other.extended {
            let cur = self.extended(name);
            self.set(name.as_str(), cur - v);
        }
    }

    pub fn plus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.add(other);
        r
    }

    pub fn minus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.sub(other);
        r
    }

    /// Per-resource maximum.
    pub fn max(&self, other: &Resources) -> Resources {
        let mut r = Resources {
            cpu: self.cpu.max(other.cpu),
            memory: self.memory.max(other.memory),
            pods: self.pods.max(other.pods),
            ephemeral: self.ephemeral.max(other.ephemeral),
            extended: self.extended.clone(),
        };
        for &(name, v) in &other.extended {
            let cur = r.extended(name);
            r.set(name.as_str(), cur.max(v));
        }
        r
    }

    /// Raises each amount to at least `other`'s.
    pub fn max_in_place(&mut self, other: &Resources) {
        self.cpu = self.cpu.max(other.cpu);
        self.memory = self.memory.max(other.memory);
        self.pods = self.pods.max(other.pods);
        self.ephemeral = self.ephemeral.max(other.ephemeral);
        for &(name, v) in &other.extended {
            if v > self.extended(name) {
                self.set(name.as_str(), v);
            }
        }
    }

    /// Whether `self + extra` fits in `available`, without building the sum.
    pub fn fits_with(&self, extra: &Resources, available: &Resources) -> bool {
        if !self.extended.is_empty() || !extra.extended.is_empty() {
            return self.plus(extra).fits_in(available);
        }
        !available.any_negative()
            && self.cpu + extra.cpu <= available.cpu
            && self.memory + extra.memory <= available.memory
            && self.pods + extra.pods <= available.pods
            && self.ephemeral + extra.ephemeral <= available.ephemeral
    }

    /// Whether every amount requested here is within `available`. As in
    /// Karpenter, nothing fits where anything is already over-committed.
    pub fn fits_in(&self, available: &Resources) -> bool {
        !available.any_negative()
            && self.cpu <= available.cpu
            && self.memory <= available.memory
            && self.pods <= available.pods
            && self.ephemeral <= available.ephemeral
            && self
                .extended
                .iter()
                .all(|&(n, v)| v <= available.extended(n))
    }

    /// The first resource that does not fit, for error messages.
    pub fn first_excess(&self, available: &Resources) -> Option<&'static str> {
        if self.cpu > 0 && self.cpu > available.cpu {
            return Some(CPU);
        }
        if self.memory > 0 && self.memory > available.memory {
            return Some(MEMORY);
        }
        if self.pods > 0 && self.pods > available.pods {
            return Some(PODS);
        }
        if self.ephemeral > 0 && self.ephemeral > available.ephemeral {
            return Some(EPHEMERAL_STORAGE);
        }
        self.extended
            .iter()
            .find(|&&(n, v)| v > 0 && v > available.extended(n))
            .map(|(n, _)| n.as_str())
    }

    /// Whether any amount is negative (a NodePool limit exceeded).
    pub fn any_negative(&self) -> bool {
        self.cpu < 0
            || self.memory < 0
            || self.pods < 0
            || self.ephemeral < 0
            || self.extended.iter().any(|&(_, v)| v < 0)
    }

    /// The accelerator count: NVIDIA, AMD and Neuron devices.
    pub fn gpus(&self) -> i64 {
        [NVIDIA_GPU, AMD_GPU, AWS_NEURON]
            .iter()
            .map(|n| self.get(n))
            .sum()
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu {}", format_cpu(self.cpu))?;
        write!(f, ", memory {}", format_bytes(self.memory))?;
        if self.pods != 0 {
            write!(f, ", pods {}", self.pods)?;
        }
        if self.ephemeral != 0 {
            write!(f, ", ephemeral-storage {}", format_bytes(self.ephemeral))?;
        }
        for (n, v) in &self.extended {
            write!(f, ", {n} {v}")?;
        }
        Ok(())
    }
}

pub fn format_cpu(milli: i64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

pub fn format_bytes(bytes: i64) -> String {
    if bytes != 0 && bytes % GIB == 0 {
        format!("{}Gi", bytes / GIB)
    } else if bytes % MIB == 0 {
        format!("{}Mi", bytes / MIB)
    } else {
        format!("{bytes}")
    }
}

/// Writes resources as a Kubernetes resource list (`{"cpu": "1500m", …}`).
pub fn serialize_resources<S: serde::Serializer>(r: &Resources, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    m.serialize_entry(CPU, &format_cpu(r.cpu))?;
    m.serialize_entry(MEMORY, &format_bytes(r.memory))?;
    if r.pods != 0 {
        m.serialize_entry(PODS, &r.pods.to_string())?;
    }
    if r.ephemeral != 0 {
        m.serialize_entry(EPHEMERAL_STORAGE, &format_bytes(r.ephemeral))?;
    }
    for (n, v) in &r.extended {
        m.serialize_entry(n.as_str(), &v.to_string())?;
    }
    m.end()
}

/// A resource list as Kubernetes writes it, for manifests and reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceList(pub std::collections::BTreeMap<String, String>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_milli("100m").unwrap(), 100);
        assert_eq!(parse_milli("1.5").unwrap(), 1500);
        assert_eq!(parse_milli("2").unwrap(), 2000);
        assert_eq!(parse_units("512Mi").unwrap(), 512 * MIB);
        assert_eq!(parse_units("1Gi").unwrap(), GIB);
        assert_eq!(parse_units("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_units("1e3").unwrap(), 1000);
        assert_eq!(parse_units("0.5").unwrap(), 1, "rounds up");
        assert_eq!(parse_milli("0").unwrap(), 0);
        assert!(parse_milli("abc").is_err());
        assert!(parse_milli("1Qi").is_err());
        assert!(parse_milli("").is_err());
    }

    #[test]
    fn fit_and_arithmetic() {
        let mut a = Resources::new(1000, GIB);
        a.set(NVIDIA_GPU, 1);
        let node = Resources::new(2000, 2 * GIB);
        assert!(!a.fits_in(&node), "a GPU request needs a GPU");
        let mut gpu_node = node.clone();
        gpu_node.set(NVIDIA_GPU, 4);
        assert!(a.fits_in(&gpu_node));
        let left = gpu_node.minus(&a);
        assert_eq!(left.cpu, 1000);
        assert_eq!(left.extended(Sym::new(NVIDIA_GPU)), 3);
        assert_eq!(Resources::new(3000, 0).first_excess(&node), Some(CPU));
    }
}
