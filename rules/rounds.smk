# Iterative rounds and arms: which run a {chain} wildcard names, where its samples, pairs and
# checkpoints live, and the flags that tell each stage which run it serves. Round 1 of the paper
# arm keeps the paper's paths; every other run lives under {policy}/{arm}/{recipe}/r{k}/.


def segment(chain, k):
    """Path segment of run ``k`` of ``chain``: none for the paper's run."""
    if chain is CHAINS[0] and k == 1:
        return ""
    return f"{SEP}{chain.arm}/{chain.recipe}/r{k}"


def samples_segment(chain, k):
    """Round 1 samples come from the original model: every chain shares them."""
    return "" if k == 1 else segment(chain, k)


def pairs_segment(chain, k):
    """Round 1 pairs depend on the arm only: the default arm's recipes share the paper's."""
    return "" if chain.arm == CHAINS[0].arm and k == 1 else segment(chain, k)


def run_of(wildcards):
    """``(chain, round)`` of a job's ``{chain}`` wildcard (or of an eval ``{variant}``)."""
    text = (
        wildcards.chain
        if "chain" in wildcards.keys()
        else variant_chain(wildcards.variant)
    )
    if not text:
        return CHAINS[0], 1
    arm, recipe, k = re.fullmatch(CHAIN, text).groups()
    for chain in CHAINS:
        if (chain.arm, chain.recipe) == (arm, recipe) and segment(
            chain, int(k)
        ) == text:
            return chain, int(k)
    raise ValueError(f"{text}: not a run of this config's arms, recipes and rounds")


def variant_chain(variant):
    """The ``{chain}`` part of an eval variant (``paper/dpo/r2/dpo-x`` -> ``/paper/dpo/r2``)."""
    head, _, _ = variant.rpartition(SEP)
    return f"{SEP}{head}" if head else ""


def variant_method(wildcards):
    """``base``, ``rft`` or ``dpo`` of an eval variant."""
    return variant_name(wildcards).split("-")[0]


def variant_pairs_from(wildcards):
    """Whose pairs a DPO variant was trained on (the policy itself for the others)."""
    name = variant_name(wildcards)
    return name.split("-", 1)[1] if "-" in name else wildcards.policy


def variant_name(wildcards):
    """An eval variant without its chain: ``base``, ``rft``, ``dpo-{pairs_from}``."""
    return wildcards.variant.rpartition(SEP)[2]


def checkpoint_dir(policy, chain, k):
    return f"results/checkpoints/{policy}{segment(chain, k)}/dpo-{policy}"


def start_model_input(wildcards):
    """What run ``k`` of a chain samples from and trains from: the original model in round 1,
    else round k-1's checkpoint."""
    chain, k = run_of(wildcards)
    if k == 1:
        return base_model_input(wildcards.policy)
    return checkpoint_dir(wildcards.policy, chain, k - 1)


def start_model_ref(wildcards):
    chain, k = run_of(wildcards)
    if k == 1:
        return base_model_ref(wildcards.policy)
    return checkpoint_dir(wildcards.policy, chain, k - 1)


def round_problems(wildcards):
    """The training problems of the job's round: the pool, or the round's disjoint slice."""
    if config["rounds_problems"] == "same":
        return "results/problems/train.jsonl"
    return f"results/problems/rounds/r{run_of(wildcards)[1]}.jsonl"


def sampling_model_input(wildcards):
    """The model a sampling job draws from; round 1 samples are shared by every chain, so a
    chain's own samples start at round 2."""
    if wildcards.chain and run_of(wildcards)[1] == 1:
        raise ValueError(
            f"round 1 of every arm samples at results/samples/{wildcards.policy}/"
        )
    return start_model_input(wildcards)


def run_samples(wildcards, kind):
    """The sample (``kind`` samples) or execution shards a run's pairs are built from."""
    chain, k = run_of(wildcards)
    where = f"{wildcards.policy}{samples_segment(chain, k)}"
    return [f"results/{kind}/{where}/shard{shard}.jsonl" for shard in SHARDS]


def run_pairs(wildcards):
    """The pairs a DPO run trains on: its own chain's (a Table 2 run: another model's)."""
    if not wildcards.chain:
        return f"results/pairs/{wildcards.pairs_from}/pairs.jsonl"
    if wildcards.pairs_from != wildcards.policy:
        raise ValueError(
            "off-policy DPO (Table 2) is a run of the paper's round 1 only"
        )
    chain, k = run_of(wildcards)
    return f"results/pairs/{wildcards.policy}{pairs_segment(chain, k)}/pairs.jsonl"


def reference_input(wildcards):
    """``rounds_reference: original``: rounds after the first keep the original model as the
    DPO reference (its directory is an input where the workflow builds it)."""
    chain, k = run_of(wildcards)
    if k > 1 and config["rounds_reference"] == "original":
        return base_model_input(wildcards.policy)
    return []


def dpo_flags(wildcards):
    """The DPO run's flags: its chain's overrides that change its recipe's values, and the
    reference model where it is not TRL's default (the starting model)."""
    chain, k = run_of(wildcards)
    recipe = CHECKED.dpo_recipes[chain.recipe_path]
    flags = cli_flags(
        {
            k_: v
            for k_, v in chain.overrides.items()
            if k_ not in recipe or recipe[k_] != v
        }
    )
    if k > 1 and config["rounds_reference"] == "original":
        ref = shlex.quote(base_model_ref(wildcards.policy))
        flags = f"{flags} --ref_model_name_or_path {ref}".strip()
    return flags


def run_flags(chain, k):
    """``codedpo score`` / ``hack-report`` identity of a run, where it is not the default."""
    flags = []
    if k != 1:
        flags.append(f"--round {k}")
    if chain.arm != CHAINS[0].arm:
        flags.append(f"--arm {shlex.quote(chain.arm)}")
    if chain.recipe != "dpo":
        flags.append(f"--recipe {shlex.quote(chain.recipe)}")
    return flags


def run_label(policy, chain, k):
    """A run's label in the hack report: ``demo-a round 2``, ``demo-a max_min round 1``."""
    arm = "" if chain.arm == CHAINS[0].arm else f" {chain.arm}"
    recipe = "" if chain.recipe == CHAINS[0].recipe else f" {chain.recipe}"
    return f"{policy}{arm}{recipe} round {k}"


def pair_runs():
    """``(policy, path segment, label)`` of every set of pairs the tables' runs train on."""
    runs = {}
    for policy in config["tables"]["models"]:
        for chain in CHAINS:
            for k in range(1, ROUNDS + 1):
                where = pairs_segment(chain, k)
                runs.setdefault((policy, where), run_label(policy, chain, k))
    return [(policy, where, label) for (policy, where), label in runs.items()]


def rounds_shown():
    """The round table and plot, when there is more than the paper's run to show."""
    return ROUNDS > 1 or len(CHAINS) > 1
