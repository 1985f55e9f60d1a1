fn main() {
    println!("a command, not a policy");
}
