"""Supervised warm start of the mini world's base policy, and the measurement of what it learned.

The warm start stands for the pretraining and instruction tuning that gave the real base model its
knowledge and its habits: every training image is paired with a completion
`<think>It is a {generic}.</think><answer>{label}</answer>`, asked with a prompt of the registry
drawn per batch, whose label is drawn, afresh each epoch, from a mix of taxonomy levels (generic,
group, fine; sometimes a synonym). The mix depends on how hard the image's group is, never on the
prompt, so the policy keeps the answer format whatever it is asked, learns all the fine labels it
can see and, in a single greedy pass, names only some of them. Nothing is written until the policy
is saved whole (speciarl.atomic); a crash leaves no policy folder, and a rerun starts over.
"""

from __future__ import annotations

import io
import math
import random
import resource
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutputWithPooling

from speciarl.data import prepared
from speciarl.data.taxonomy import Node, Taxonomy
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category, extract_answer
from speciarl.policy.generation import SamplingConfig, TransformersBackend
from speciarl.policy.loading import load_policy
from speciarl.policy.params import BootstrapParams
from speciarl.policy.prompts import PROMPTS, build_messages
from speciarl.policy.tiny import init_tiny_policy, save_policy

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One training image: its JPEG bytes, its taxonomy and its fine label, and the level mix to draw from."""

    image: bytes
    taxonomy: Taxonomy
    label: str
    mix: dict[str, float]  # taxonomy level -> probability of a target at that level


def completion_text(generic: str, answer: str) -> str:
    return f"<think>It is a {generic}.</think><answer>{answer}</answer>"


def draw_target(example: Example, synonym_prob: float, rng: random.Random) -> str:
    """A completion for `example`: a label at a level drawn from its mix, a synonym with `synonym_prob`."""
    lineage = example.taxonomy.lineage(example.taxonomy.classes[example.label])
    by_level = {node.level: node for node in lineage}
    levels = [level for level in example.mix if level in by_level]
    level = rng.choices(levels, weights=[example.mix[level] for level in levels])[0]
    return completion_text(lineage[0].name, _name_or_synonym(by_level[level], synonym_prob, rng))


def _name_or_synonym(node: Node, synonym_prob: float, rng: random.Random) -> str:
    if node.synonyms and rng.random() < synonym_prob:
        return rng.choice(node.synonyms)
    return node.name


def decode_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def preprocess(image_processor, jpegs: Iterable[bytes]) -> dict:
    """Pixel values and patch grids of JPEG images, as the policy's image processor gives them."""
    return dict(image_processor(images=[decode_image(data) for data in jpegs], return_tensors="pt"))


def sft_batch(processor, prompt_text: str, completions: list[str], grids: torch.Tensor) -> dict:
    """Text-side model inputs for (image, prompt) -> completion pairs; loss only on the completion and end of turn.

    `grids` holds each image's (t, h, w) patch grid, from which the prompt gets as many image
    tokens as the processor would give it; the image side (pixels or encoder outputs) is the
    caller's. Equal to the processor's own input_ids (tested), without touching the pixels.
    """
    tokenizer = processor.tokenizer
    prompt = processor.apply_chat_template(build_messages(prompt_text), add_generation_prompt=True, tokenize=False)
    merge = processor.image_processor.merge_size
    prompts = [
        prompt.replace(processor.image_token, processor.image_token * (int(g.prod()) // merge**2), 1) for g in grids
    ]
    tokenizer.padding_side = "right"
    inputs = tokenizer(
        [text + completion + tokenizer.eos_token for text, completion in zip(prompts, completions, strict=True)],
        padding=True,
        return_tensors="pt",
    )
    labels = inputs["input_ids"].clone()
    # Images of one size give every row the same prompt: tokenize each distinct one once.
    prompt_ids_of = {text: tokenizer(text, return_tensors="pt")["input_ids"][0] for text in set(prompts)}
    for row, text in enumerate(prompts):
        prompt_ids = prompt_ids_of[text]
        if not torch.equal(inputs["input_ids"][row, : len(prompt_ids)], prompt_ids):
            raise ValueError("the tokenizer merges the prompt's last token with the completion: cannot mask the prompt")
        labels[row, : len(prompt_ids)] = IGNORE_INDEX
    labels[inputs["attention_mask"] == 0] = IGNORE_INDEX
    inputs["labels"] = labels
    inputs["mm_token_type_ids"] = (inputs["input_ids"] == processor.image_token_id).long()
    inputs["image_grid_thw"] = grids
    return inputs


def completion_loss(model, inputs: dict) -> torch.Tensor:
    """The causal LM loss of `inputs` (sft_batch's), with the output head run only where it is needed.

    The loss covers the completions, a fifth of each sequence; the prompt before them needs hidden
    states but no logits. Computing the vocabulary logits from the first position that predicts a
    target onwards gives the same loss as the model's own (tested), at about 0.8x the step's cost.
    """
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    first_target = int((labels != IGNORE_INDEX).any(0).nonzero()[0])
    keep = labels.shape[1] - first_target + 1  # positions first_target - 1 .. end predict the targets
    logits = model(**inputs, logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, first_target:].flatten(), ignore_index=IGNORE_INDEX
    )


@torch.no_grad()
def encode_images(
    model, processor, images: Sequence[bytes], batch_size: int = 64
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(image tokens' embeddings, patch grid) of each image through the vision tower as it is now.

    The SFT keeps a pretrained tower frozen, so each image's tokens are computed once here instead
    of at every step (the tower's forward pass and the image preprocessing were most of a step).
    """
    encoded = []
    for start in range(0, len(images), batch_size):
        pixels = preprocess(processor.image_processor, images[start : start + batch_size])
        features = model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output
        encoded += list(zip(features, pixels["image_grid_thw"], strict=True))
    return encoded


class _PixelBatches(torch.utils.data.Dataset):
    """The vision pretraining's batches, each decoded and preprocessed, for a DataLoader's worker process.

    The worker decodes and preprocesses the next batches on a second core while the training step
    runs; a thread did the same work but held the GIL for much of it (a step took 24.9 ms with it,
    21.0 with the worker). The batch order is fixed beforehand, so a seeded order stays the same.
    """

    def __init__(self, batches: Sequence[list[Example]], image_processor):
        self.batches = batches
        self.image_processor = image_processor

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        return preprocess(self.image_processor, (example.image for example in self.batches[index]))


class _PatchMatmul(torch.nn.Module):
    """Qwen2.5-VL's patch embedding (a Conv3d whose kernel is its stride) as the matmul it amounts to.

    Each patch arrives flattened, so the convolution is one linear map per patch; torch's CPU
    Conv3d computes it about 6x slower, forward and backward, which made it 40 % of a vision
    pretraining step. Same weights (the Conv3d's own parameters), same outputs up to float rounding.
    """

    def __init__(self, conv: torch.nn.Conv3d):
        super().__init__()
        self.conv = conv

    @property
    def weight(self) -> torch.nn.Parameter:  # the patch embedding reads its projection's dtype from here
        return self.conv.weight

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        flat = torch.nn.functional.linear(patches.flatten(1), self.conv.weight.flatten(1), self.conv.bias)
        return flat[:, :, None, None, None]


@contextmanager
def _patch_embedding_as_matmul(visual) -> Iterator[None]:
    conv = visual.patch_embed.proj
    visual.patch_embed.proj = _PatchMatmul(conv)
    try:
        yield
    finally:
        visual.patch_embed.proj = conv


def _optimizer(parameters, lr: float, weight_decay: float, total_steps: int, warmup_fraction: float):
    """AdamW with a linear warm-up then a cosine decay to zero over `total_steps`."""
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _batches(examples: Sequence[Example], batch_size: int, epochs: int, rng: random.Random) -> Iterable[list[Example]]:
    """`epochs` passes over the examples, each in a fresh seeded order."""
    for _ in range(epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start : start + batch_size]]


def pretrain_vision(
    model,
    processor,
    examples: Sequence[Example],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    warmup_fraction: float = 0.05,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Supervised pretraining of the vision tower: name every image at each taxonomy level below the root.

    Stands for the separate pretraining of a real VLM's vision encoder. A vision transformer trained
    from scratch learns shapes and small marks only over many epochs, which the SFT cannot afford
    (its cost is in the language model); the tower alone is cheap. A linear head over the tower's
    pooled output (in the language model's embedding space) classifies each level, then is dropped.
    Returns the loss of every step.
    """
    if not examples:
        raise ValueError("no training examples for the vision pretraining")
    nodes: dict[str, list[str]] = {}  # level -> node ids of that level, over every taxonomy
    for example in examples:
        for node in example.taxonomy.lineage(example.taxonomy.classes[example.label])[1:]:
            ids = nodes.setdefault(node.level, [])
            if node.id not in ids:
                ids.append(node.id)
    index = {level: {node_id: i for i, node_id in enumerate(ids)} for level, ids in nodes.items()}
    width = model.config.vision_config.out_hidden_size
    heads = torch.nn.ModuleDict({level: torch.nn.Linear(width, len(ids)) for level, ids in nodes.items()})
    visual = model.model.visual
    rng = random.Random(seed)
    torch.manual_seed(seed)
    total = epochs * math.ceil(len(examples) / batch_size)
    optimizer, schedule = _optimizer(
        [*visual.parameters(), *heads.parameters()], lr, weight_decay, total, warmup_fraction
    )
    visual.train()
    losses: list[float] = []
    batches = list(_batches(examples, batch_size, epochs, rng))
    # batch_size=None: each item is a batch already. A worker's error (a corrupt image) is raised here.
    pixel_batches = torch.utils.data.DataLoader(
        _PixelBatches(batches, processor.image_processor), batch_size=None, num_workers=1, prefetch_factor=4
    )
    with (
        _patch_embedding_as_matmul(visual),
        tqdm(total=total, desc="vision pretraining", unit="step", disable=not progress) as bar,
    ):
        for batch, pixels in zip(batches, pixel_batches, strict=True):
            features = model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output
            pooled = torch.stack([feature.mean(0) for feature in features])
            loss = sum(
                torch.nn.functional.cross_entropy(
                    heads[level](pooled),
                    torch.tensor([index[level][_node_at(e, level)] for e in batch]),
                )
                for level in nodes
            )
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def _node_at(example: Example, level: str) -> str:
    return next(
        node.id for node in example.taxonomy.lineage(example.taxonomy.classes[example.label]) if node.level == level
    )


def train_sft(
    model,
    processor,
    examples: Sequence[Example],
    prompts: Sequence[str],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    warmup_fraction: float = 0.05,
    weight_decay: float = 0.0,
    synonym_prob: float = 0.0,
    train_vision: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """SFT of the policy on (image, prompt) -> a target drawn from each example's level mix.

    Each batch asks one of `prompts`, drawn at random, so that the answer format holds whatever the
    prompt says and no prompt is tied to a level. Returns the loss of every step.

    `train_vision=False` keeps the vision tower as it is (pretrained) and trains the language model
    on image tokens encoded once beforehand.
    """
    if not examples:
        raise ValueError("no training examples for the warm start")
    if not prompts:
        raise ValueError("no prompts for the warm start")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    total = epochs * math.ceil(len(examples) / batch_size)
    model.model.visual.requires_grad_(train_vision)  # frozen: no gradient is even computed for it
    encoded = (
        None
        if train_vision
        else dict(zip(map(id, examples), encode_images(model, processor, [e.image for e in examples]), strict=True))
    )
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer, schedule = _optimizer(trained, lr, weight_decay, total, warmup_fraction)
    model.train()
    losses: list[float] = []
    with tqdm(total=total, desc="warm start", unit="step", disable=not progress) as bar:
        for batch in _batches(examples, batch_size, epochs, rng):
            prompt_text = rng.choice(prompts)
            completions = [draw_target(example, synonym_prob, rng) for example in batch]
            if encoded is None:
                pixels = preprocess(processor.image_processor, (e.image for e in batch))
                inputs = sft_batch(processor, prompt_text, completions, pixels["image_grid_thw"])
                inputs["pixel_values"] = pixels["pixel_values"]
            else:
                features, grids = zip(*(encoded[id(example)] for example in batch), strict=True)
                inputs = sft_batch(processor, prompt_text, completions, torch.stack(grids))
                inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=list(features))}
            loss = completion_loss(model, inputs)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.model.visual.requires_grad_(True)
    model.eval()
    return losses


def categorize(judge: TaxonomyJudge, truth_label: str, completion: str) -> Category | None:
    """Verdict of a completion by the taxonomy judge; None for a format failure, wrong if undecided."""
    answer = extract_answer(completion)
    if answer is None:
        return None
    return judge.judge(truth_label, answer) or Category.WRONG


def _is_fine(category: Category | None) -> bool:
    return category in (Category.SPECIFIC, Category.MORE_SPECIFIC)


def measure_policy(
    generate: Callable[[list[Image.Image], int, float, str], list[list[str]]],
    taxonomy: Taxonomy,
    samples: Iterable[tuple[bytes, str]],
    *,
    best_of: int,
    batch_size: int,
    prompts: dict[str, str],
    difficulty: dict[str, str] | None = None,
    desc: str = "measure",
    progress: bool = True,
) -> dict:
    """Greedy correctness/specificity and best-of-N fine coverage on (image bytes, fine label) samples.

    `generate(images, n, temperature, prompt_text)` returns n completions per image (temperature 0
    = greedy). The first of `prompts` is the one measured; every prompt's greedy format error rate
    is measured too. `difficulty` (fine label -> its group's difficulty) adds the same figures per
    difficulty.
    """
    samples = list(samples)
    judge = TaxonomyJudge(taxonomy)
    main_prompt = next(iter(prompts.values()))
    difficulty = difficulty or {}
    tallies: dict[str, _Tally] = {"all": _Tally()}
    format_errors = dict.fromkeys(prompts, 0)
    for start in tqdm(range(0, len(samples), batch_size), desc=desc, unit="batch", disable=not progress):
        chunk = samples[start : start + batch_size]
        images = [decode_image(image) for image, _ in chunk]
        greedy = generate(images, 1, 0.0, main_prompt)
        sampled = generate(images, best_of, 1.0, main_prompt)
        for (_, label), first, many in zip(chunk, greedy, sampled, strict=True):
            verdicts = [categorize(judge, label, text) for text in many]
            for key in ("all", difficulty.get(label)):
                if key is not None:
                    tallies.setdefault(key, _Tally()).add(categorize(judge, label, first[0]), verdicts)
        for name, prompt_text in prompts.items():
            completions = greedy if prompt_text == main_prompt else generate(images, 1, 0.0, prompt_text)
            format_errors[name] += sum(extract_answer(texts[0]) is None for texts in completions)
    total = len(samples)
    return {
        **tallies.pop("all").summary(best_of),
        "by_difficulty": {key: tally.summary(best_of) for key, tally in sorted(tallies.items())},
        "format_error_rate_by_prompt": {
            name: round(count / total, 4) if total else 0.0 for name, count in format_errors.items()
        },
    }


@dataclass
class _Tally:
    """Greedy verdicts, sampled verdicts and fine-label coverage of a set of images."""

    greedy: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in Category} | {"format_error": 0})
    sampled: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in Category} | {"format_error": 0})
    images: int = 0
    greedy_fine: int = 0
    best_fine: int = 0

    def add(self, greedy: Category | None, sampled: list[Category | None]) -> None:
        self.images += 1
        self.greedy[greedy.value if greedy else "format_error"] += 1
        self.greedy_fine += _is_fine(greedy)
        for verdict in sampled:
            self.sampled[verdict.value if verdict else "format_error"] += 1
        self.best_fine += any(_is_fine(verdict) for verdict in sampled)

    def summary(self, best_of: int) -> dict:
        correct = sum(self.greedy[c.value] for c in Category if c.is_correct)
        return {
            "images": self.images,
            "greedy_categories": self.greedy,
            "greedy_correctness": correct / self.images if self.images else 0.0,
            "greedy_specificity": self.greedy_fine / correct if correct else 0.0,
            "greedy_fine_images": self.greedy_fine,
            "best_of_n": best_of,
            "best_of_n_fine_images": self.best_fine,
            "sampled_categories": self.sampled,
        }


# The bootstrap stage ------------------------------------------------------------------------------


@dataclass
class PreparedDomain:
    """A prepared mini world domain: its taxonomy and the difficulty of each fine class's group."""

    dataset: str
    taxonomy: Taxonomy
    difficulty: dict[str, str]  # fine label -> difficulty of its group

    @classmethod
    def load(cls, prepared_dir: str | Path, dataset: str, split: str) -> PreparedDomain:
        taxonomy = Taxonomy.load(prepared.taxonomy_path(prepared_dir, dataset))
        manifest = prepared.read_manifest(prepared_dir, dataset, split)
        groups = manifest.get("groups")
        if not groups:
            raise ValueError(f"{dataset}/{split}: manifest has no 'groups' with difficulties (not a mini world split?)")
        difficulty = {label: group["difficulty"] for group in groups.values() for label in group["classes"]}
        return cls(dataset, taxonomy, difficulty)

    def names(self) -> list[str]:
        return [name for node in self.taxonomy.nodes.values() for name in (node.name, *node.synonyms)]


def load_examples(
    domain: PreparedDomain, prepared_dir: str | Path, split: str, label_mix: dict[str, dict[str, float]]
) -> list[Example]:
    table = prepared.read_split(prepared_dir, domain.dataset, split, columns=["image", "label"])
    if table.num_rows == 0:
        raise ValueError(f"{domain.dataset}/{split}: the split is empty")
    examples = []
    for image, label in zip(table.column("image").to_pylist(), table.column("label").to_pylist(), strict=True):
        difficulty = domain.difficulty.get(label)
        if difficulty not in label_mix:
            raise ValueError(
                f"bootstrap.label_mix: no mix for difficulty {difficulty!r} of class {label!r} "
                f"in {domain.dataset}/{split} (mixes given: {', '.join(label_mix)})"
            )
        mix = label_mix[difficulty]
        unknown = set(mix) - set(domain.taxonomy.levels)
        if unknown:
            raise ValueError(
                f"bootstrap.label_mix.{difficulty}: unknown level {sorted(unknown)[0]!r} "
                f"(levels of {domain.dataset}: {', '.join(domain.taxonomy.levels)})"
            )
        examples.append(Example(image, domain.taxonomy, label, mix))
    return examples


def tokenizer_corpus(domains: Sequence[PreparedDomain]) -> list[str]:
    """Every prompt, and a completion for every taxonomy name and synonym of every domain."""
    corpus = list(PROMPTS.values())
    for domain in domains:
        generic = domain.taxonomy.lineage(next(iter(domain.taxonomy.classes.values())))[0].name
        corpus += [completion_text(generic, name) for name in domain.names()]
    return corpus


def measurement_samples(
    prepared_dir: str | Path, dataset: str, split: str, count: int | None, seed: int
) -> list[tuple[bytes, str]]:
    table = prepared.read_split(prepared_dir, dataset, split, columns=["image", "label"])
    if table.num_rows == 0:
        raise ValueError(f"{dataset}/{split}: the split is empty")
    rows = list(zip(table.column("image").to_pylist(), table.column("label").to_pylist(), strict=True))
    if count is not None and count < len(rows):
        rows = random.Random(seed).sample(rows, count)
    return rows


def warm_start(params: BootstrapParams, prepared_dir: str | Path, progress: bool = True) -> dict:
    """Build the tiny policy, warm-start it on every domain, save it, measure it; returns the metrics."""
    started = time.perf_counter()
    # Each phase's thread count (null: the count torch started with); results depend on it.
    default_threads = torch.get_num_threads()
    torch.set_num_threads(params.vision_threads or default_threads)
    domains = [PreparedDomain.load(prepared_dir, dataset, params.split) for dataset in params.datasets]
    examples = [
        example for domain in domains for example in load_examples(domain, prepared_dir, params.split, params.label_mix)
    ]
    model, processor = init_tiny_policy(tokenizer_corpus(domains), params.arch, params.seed)
    vision_losses = (
        pretrain_vision(
            model,
            processor,
            examples,
            epochs=params.vision_epochs,
            batch_size=params.vision_batch_size,
            lr=params.vision_lr,
            warmup_fraction=params.warmup_fraction,
            weight_decay=params.weight_decay,
            seed=params.seed,
            progress=progress,
        )
        if params.vision_epochs
        else []
    )
    vision_seconds = time.perf_counter() - started
    torch.set_num_threads(params.threads or default_threads)
    losses = train_sft(
        model,
        processor,
        examples,
        list(PROMPTS.values()),
        epochs=params.epochs,
        batch_size=params.batch_size,
        lr=params.lr,
        warmup_fraction=params.warmup_fraction,
        weight_decay=params.weight_decay,
        synonym_prob=params.synonym_prob,
        train_vision=params.sft_trains_vision,
        seed=params.seed,
        progress=progress,
    )
    train_seconds = time.perf_counter() - started
    save_policy(model, processor, params.out_dir)

    # Measured on the saved policy, through the same loading and generation code as every stage.
    backend = TransformersBackend(*load_policy(params.out_dir))
    measure = params.measure

    def generate(images, n, temperature, prompt_text):
        sampling = SamplingConfig(n=n, temperature=temperature, max_new_tokens=measure.max_new_tokens, seed=params.seed)
        return backend.generate(images, prompt_text, sampling)

    results = {}
    for domain in domains:
        samples = measurement_samples(
            prepared_dir, domain.dataset, measure.split, measure.images_per_domain, params.seed
        )
        results[domain.dataset] = measure_policy(
            generate,
            domain.taxonomy,
            samples,
            best_of=measure.best_of,
            batch_size=measure.batch_size,
            prompts={"general": PROMPTS["general"]} | PROMPTS,
            difficulty=domain.difficulty,
            desc=f"measure {domain.dataset}/{measure.split}",
            progress=progress,
        )
    return {
        "domains": results,
        "targets_met": targets_met(results),
        "vision_pretraining": {
            "steps": len(vision_losses),
            "loss_per_epoch": [
                round(sum(part) / len(part), 4) for part in _epochs(vision_losses, params.vision_epochs)
            ],
            "seconds": round(vision_seconds, 1),
        },
        "train": {
            "examples": len(examples),
            "steps": len(losses),
            "loss_first": losses[0],
            "loss_per_epoch": [round(sum(part) / len(part), 4) for part in _epochs(losses, params.epochs)],
            "seconds": round(train_seconds - vision_seconds, 1),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _epochs(losses: list[float], epochs: int) -> list[list[float]]:
    size = len(losses) // epochs if epochs else 0
    return [losses[i * size : (i + 1) * size] for i in range(epochs)]


# What the warm start must reach: the operating point of the paper's instruction-tuned base (zero-shot
# greedy correctness 0.846, specificity 0.742; fine labels it knows but does not say), in every
# domain, and the answer format whatever the prompt.
GREEDY_CORRECTNESS_RANGE = (0.80, 0.92)
GREEDY_SPECIFICITY_RANGE = (0.55, 0.80)
MIN_BEST_OF_N_FINE_RATIO = 1.3
MIN_BEST_OF_N_FINE_SHARE = 0.70
MAX_FORMAT_ERROR_RATE = 0.05


def targets_met(results: dict[str, dict]) -> dict[str, bool]:
    def within(value: float, bounds: tuple[float, float]) -> bool:
        return bounds[0] <= value <= bounds[1]

    return {
        "greedy_correctness": all(within(r["greedy_correctness"], GREEDY_CORRECTNESS_RANGE) for r in results.values()),
        "greedy_specificity": all(within(r["greedy_specificity"], GREEDY_SPECIFICITY_RANGE) for r in results.values()),
        "best_of_n_fine_ratio": all(
            r["best_of_n_fine_images"] >= max(1, MIN_BEST_OF_N_FINE_RATIO * r["greedy_fine_images"])
            for r in results.values()
        ),
        "best_of_n_fine_share": all(
            r["best_of_n_fine_images"] >= MIN_BEST_OF_N_FINE_SHARE * r["images"] for r in results.values()
        ),
        "format_errors_every_prompt": all(
            rate < MAX_FORMAT_ERROR_RATE for r in results.values() for rate in r["format_error_rate_by_prompt"].values()
        ),
    }
