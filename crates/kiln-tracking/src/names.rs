//! Memorable names for runs created without one (`adjective-animal-123`), as MLflow gives them.

const ADJECTIVES: &[&str] = &[
    "agreeable", "amazing", "amusing", "bold", "brave", "bright", "calm", "capable", "casual", "clean", "clever",
    "crisp", "curious", "dapper", "defiant", "delicate", "eager", "earnest", "fearless", "fun", "gentle", "glamorous",
    "gregarious", "handsome", "honest", "humble", "illustrious", "industrious", "intelligent", "jolly", "kindly",
    "languid", "likeable", "lively", "loud", "luxuriant", "magnificent", "merciful", "nebulous", "nimble", "omniscient",
    "patient", "placid", "polite", "powerful", "precious", "redolent", "resilient", "rumbling", "serious", "shivering",
    "silent", "skillful", "smiling", "sneaky", "spiffy", "stately", "suave", "sincere", "thoughtful", "tranquil",
    "unequaled", "upbeat", "valuable", "victorious", "vindictive", "wise", "worried", "zealous",
];

const ANIMALS: &[&str] = &[
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf", "carp", "cat", "chimp",
    "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub", "deer", "doe", "dog", "dolphin", "donkey",
    "dove", "duck", "eel", "elk", "fawn", "finch", "fish", "flea", "fly", "foal", "fowl", "fox", "frog", "gnat", "gnu",
    "goat", "goose", "grouse", "grub", "gull", "hare", "hawk", "hen", "hog", "horse", "hound", "jay", "kit", "kite",
    "koi", "lamb", "lark", "loon", "lynx", "mare", "midge", "mink", "mole", "moose", "moth", "mouse", "mule", "newt",
    "owl", "ox", "panda", "penguin", "perch", "pig", "pug", "quail", "ram", "rat", "ray", "robin", "roo", "rook",
    "seal", "shad", "shark", "sheep", "shoat", "shrew", "shrike", "shrimp", "skink", "skunk", "sloth", "slug", "snail",
    "snake", "snipe", "squid", "stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout", "turtle", "vole",
    "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
];

pub(crate) fn random_run_name() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let n = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]);
    let adjective = ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize];
    let animal = ANIMALS[((n >> 16) % ANIMALS.len() as u64) as usize];
    format!("{adjective}-{animal}-{}", (n >> 32) % 1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape() {
        let name = super::random_run_name();
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[2].parse::<u32>().unwrap() < 1000);
    }
}
