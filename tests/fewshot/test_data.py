"""The few-shot task distributions (metarl.fewshot.data) keep the `TaskDistribution` contract:
shapes and dtypes, batches set by the generator alone, sinusoid parameters within their ranges,
N-way K-shot episodes with disjoint support and query sets, consistent labels and held-out
classes, image folders read as laid out, and one-line errors for every bad argument."""

import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metarl.fewshot.data import (
    DESCRIPTIONS,
    TASK_DISTRIBUTIONS,
    Digits,
    FewShotBatch,
    ImageFolder,
    Sinusoid,
    is_fewshot_task,
    make_tasks,
    resolve_task_id,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def raises_one_line(match, call, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def assert_same(a: FewShotBatch, b: FewShotBatch):
    for x, y in zip(
        (a.support_x, a.support_y, a.query_x, a.query_y),
        (b.support_x, b.support_y, b.query_x, b.query_y),
        strict=True,
    ):
        assert torch.equal(x, y)


# A synthetic image folder: class c's images are flat at CLASS_VALUE(c), with pixel (9, 9) at
# MARK(j) for its image j, so that an image tells its class and identity exactly (no resize).
def class_value(c):
    return 20 + 30 * c


def mark(j):
    return 5 + 2 * j


def synthetic_image(c, j, size=10):
    image = np.full((size, size), class_value(c), dtype=np.uint8)
    image[9, 9] = mark(j)
    return image


NESTED = ["alpha/a1", "alpha/a2", "beta/b1", "beta/b2", "gamma/g1", "gamma/g2"]


def write_classes(root, names, images_per_class=4, suffix=".png"):
    for c, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        for j in range(images_per_class):
            iio.imwrite(folder / f"{j:02d}{suffix}", synthetic_image(c, j))
    return root


def decode(images):
    """(class, image) of each synthetic image [..., 1, 10, 10] in [0, 1]."""
    pixels = (images * 255).round().to(torch.int64)
    return (pixels[..., 0, 0, 0] - 20) // 30, (pixels[..., 0, 9, 9] - 5) // 2


# --- registry


def test_registry_resolves_full_and_short_names():
    assert set(TASK_DISTRIBUTIONS) == set(DESCRIPTIONS) == {"sinusoid", "digits", "images"}
    assert resolve_task_id("digits") == resolve_task_id("fewshot/digits") == "fewshot/digits"
    assert is_fewshot_task("fewshot/sinusoid") and is_fewshot_task("images")
    assert not is_fewshot_task("omniglot") and not is_fewshot_task("metarl/Bandit-v0")
    assert not is_fewshot_task(3)
    message = raises_one_line("unknown few-shot task 'omniglot'", resolve_task_id, "omniglot")
    assert "fewshot/sinusoid, fewshot/digits, fewshot/images" in message
    assert isinstance(make_tasks("sinusoid", {}), Sinusoid)
    assert isinstance(make_tasks("fewshot/digits", {"ways": 3}), Digits)


def test_make_tasks_turns_bad_kwargs_into_one_line_errors(tmp_path):
    message = raises_one_line("bad kwargs for fewshot/digits", make_tasks, "digits", {"way": 3})
    assert (
        "'way'" in message
        and "valid kwargs: ways, rotations, split, test_fraction, train_digits" in message
    )
    message = raises_one_line("bad kwargs for fewshot/images", make_tasks, "images", {})
    assert "'root'" in message and "image_size" in message
    raises_one_line("bad kwargs for fewshot/sinusoid", make_tasks, "sinusoid", [1])
    raises_one_line("unknown few-shot task", make_tasks, "fewshot/nope", {})
    raises_one_line("ways must be an integer >= 2, got 1", make_tasks, "digits", {"ways": 1})


# --- sinusoid


def test_sinusoid_shapes_dtypes_and_determinism():
    tasks = Sinusoid()
    assert (tasks.kind, tasks.input_shape, tasks.output_size) == ("regression", (1,), 1)
    batch = tasks.sample(3, 5, 7, gen(1), "train")
    assert batch.num_tasks == 3
    assert batch.support_x.shape == batch.support_y.shape == (3, 5, 1)
    assert batch.query_x.shape == batch.query_y.shape == (3, 7, 1)
    assert all(t.dtype == torch.float32 for t in (batch.support_x, batch.query_y))
    assert_same(batch, tasks.sample(3, 5, 7, gen(1), "test"))  # the splits: one distribution
    assert not torch.equal(batch.support_x, tasks.sample(3, 5, 7, gen(2), "train").support_x)


def test_sinusoid_targets_are_a_sin_x_minus_phi():
    tasks = Sinusoid()
    batch, amplitudes, phases = tasks.sample_with_params(4, 6, 9, gen(3), "train")
    assert amplitudes.shape == phases.shape == (4,)
    assert_same(batch, tasks.sample(4, 6, 9, gen(3), "train"))
    a, p = amplitudes.double().numpy()[:, None, None], phases.double().numpy()[:, None, None]
    for x, y in ((batch.support_x, batch.support_y), (batch.query_x, batch.query_y)):
        expected = a * np.sin(x.double().numpy() - p)
        np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)
    grid = torch.linspace(-5, 5, 11).expand(4, 11)[..., None]
    np.testing.assert_allclose(
        tasks.targets(grid, amplitudes, phases).numpy(),
        a * np.sin(grid.double().numpy() - p),
        atol=1e-5,
    )


def test_sinusoid_parameters_follow_finn_et_al_ranges():
    n = 10_000
    batch, amplitudes, phases = Sinusoid().sample_with_params(n, 1, 1, gen(4), "train")
    assert 0.1 <= amplitudes.min() and amplitudes.max() <= 5.0
    assert 0.0 <= phases.min() and phases.max() <= math.pi
    x = torch.cat([batch.support_x, batch.query_x])
    assert -5.0 <= x.min() and x.max() <= 5.0 and x.min() < -4.9 and x.max() > 4.9
    # Means within 4 standard errors of U[low, high]'s: (low + high) / 2, sd (high - low) / √12.
    for draws, low, high in ((amplitudes, 0.1, 5.0), (phases, 0.0, math.pi)):
        error = (high - low) / math.sqrt(12 * n)
        assert draws.double().mean().item() == pytest.approx((low + high) / 2, abs=4 * error)
    custom = Sinusoid(amplitude_range=[1, 2], phase_range=(-1.0, 0.0), x_range=(0, 0.5))
    batch, amplitudes, phases = custom.sample_with_params(500, 2, 2, gen(5), "test")
    assert 1 <= amplitudes.min() and amplitudes.max() <= 2
    assert -1 <= phases.min() and phases.max() <= 0
    assert 0 <= batch.support_x.min() and batch.query_x.max() <= 0.5


@pytest.mark.parametrize("kwarg", ["amplitude_range", "phase_range", "x_range"])
@pytest.mark.parametrize("value", [(1.0, 1.0), (2, 1), (0, math.inf), (0, math.nan), (1,), "ab"])
def test_sinusoid_rejects_bad_ranges(kwarg, value):
    raises_one_line(
        rf"^{kwarg} must be a pair \(low, high\) of finite numbers with low < high, got ",
        Sinusoid,
        **{kwarg: value},
    )


def test_sample_rejects_bad_arguments():
    tasks = Sinusoid()
    raises_one_line(
        "num_tasks must be an integer >= 1, got 0", tasks.sample, 0, 1, 1, gen(), "train"
    )
    raises_one_line(
        "shots must be an integer >= 1, got 1.5", tasks.sample, 1, 1.5, 1, gen(), "train"
    )
    raises_one_line("queries must be an integer >= 1, got 0", tasks.sample, 1, 1, 0, gen(), "test")
    raises_one_line(
        "generator must be a torch.Generator, got None", tasks.sample, 1, 1, 1, None, "test"
    )
    raises_one_line(
        r"split must be one of \['train', 'test'\], got 'val'", tasks.sample, 1, 1, 1, gen(), "val"
    )
    raises_one_line("split must be one of", Digits().sample, 1, 1, 1, gen(), "val")


# --- digits


@pytest.fixture(scope="module")
def digit_labels():
    from sklearn.datasets import load_digits

    return torch.as_tensor(np.sort(load_digits().target))  # the order Digits keeps its images in


def test_digits_shapes_dtypes_and_determinism():
    tasks = Digits()
    assert (tasks.kind, tasks.input_shape, tasks.output_size) == ("classification", (1, 8, 8), 5)
    batch = tasks.sample(3, 2, 4, gen(1), "train")
    assert batch.support_x.shape == (3, 10, 1, 8, 8) and batch.query_x.shape == (3, 20, 1, 8, 8)
    assert batch.support_y.shape == (3, 10) and batch.query_y.shape == (3, 20)
    assert batch.support_x.dtype == torch.float32 and batch.support_y.dtype == torch.int64
    assert 0.0 <= batch.support_x.min() and batch.query_x.max() <= 1.0
    assert batch.support_x.max() == 1.0  # 16/16: the pixels are scaled, not clipped
    assert_same(batch, tasks.sample(3, 2, 4, gen(1), "train"))
    assert not torch.equal(batch.support_x, tasks.sample(3, 2, 4, gen(2), "train").support_x)
    assert Digits(ways=7).sample(2, 1, 1, gen(), "test").support_x.shape == (2, 7, 1, 8, 8)


def test_digits_classes_split_deals_digit_rotation_classes_to_fixed_disjoint_splits(digit_labels):
    tasks = Digits()
    train, test = tasks.classes("train"), tasks.classes("test")
    assert len(train) == 28 and len(test) == 12 and sorted(train + test) == list(range(40))
    assert Digits(ways=3).classes("test") == test  # the same deal in every process and run
    assert {c // 4 for c in train} & {c // 4 for c in test}  # a digit may lie in both, turned
    assert len(Digits(test_fraction=0.5).classes("test")) == 20
    indices = tasks.sample_indices(300, 1, 2, gen(3), "test")
    for examples, classes in (
        (indices.support_examples, indices.support_classes),
        (indices.query_examples, indices.query_classes),
    ):
        assert set(classes.unique().tolist()) == set(test)  # every held-out class, no other
        assert torch.equal(digit_labels[examples], classes // 4)


def test_digits_classes_rotations_and_held_out_digits(digit_labels):
    tasks = Digits(split="digits")
    assert len(tasks.classes("train")) == len(tasks.classes("test")) == 20  # 5 digits × 4 turns
    plain = Digits(ways=3, rotations=False, split="digits", train_digits=[7, 2, 9])
    assert plain.classes("train") == [2, 7, 9] and len(plain.classes("test")) == 7
    names = [plain.class_name(c) for c in plain.classes("test")]
    assert names == ["0", "1", "3", "4", "5", "6", "8"]
    for split, digits in (("train", {0, 1, 2, 3, 4}), ("test", {5, 6, 7, 8, 9})):
        indices = tasks.sample_indices(200, 1, 2, gen(6), split)
        for examples, classes in (
            (indices.support_examples, indices.support_classes),
            (indices.query_examples, indices.query_classes),
        ):
            assert set((classes // 4).unique().tolist()) == digits  # every digit, no other
            assert torch.equal(digit_labels[examples], classes // 4)  # each image of its class
        turns = indices.support_classes % 4
        assert set(turns.unique().tolist()) == {0, 1, 2, 3}
    assert tasks.class_name(4 * 3 + 2) == "3 rotated 180°"


def test_digits_rotated_classes_are_turned_images():
    tasks = Digits()
    indices = tasks.sample_indices(50, 2, 1, gen(7), "train")
    batch = tasks.episode(indices)
    for examples, classes, images in (
        (indices.support_examples, indices.support_classes, batch.support_x),
        (indices.query_examples, indices.query_classes, batch.query_x),
    ):
        for e, c, image in zip(
            examples.flatten(), classes.flatten(), images.flatten(0, 1), strict=True
        ):
            assert torch.equal(image, torch.rot90(tasks.images[e], int(c) % 4, dims=(-2, -1)))
    assert_same(batch, tasks.sample(50, 2, 1, gen(7), "train"))


def test_digits_episodes_are_well_formed():
    tasks, ways, shots, queries = Digits(ways=5), 5, 3, 4
    indices = tasks.sample_indices(100, shots, queries, gen(8), "test")
    for t in range(100):
        support = set(
            zip(
                indices.support_examples[t].tolist(),
                indices.support_classes[t].tolist(),
                strict=True,
            )
        )
        query = set(
            zip(indices.query_examples[t].tolist(), indices.query_classes[t].tolist(), strict=True)
        )
        assert len(support) == ways * shots and len(query) == ways * queries  # distinct
        assert not support & query
        label_of = {}
        for classes, labels in (
            (indices.support_classes[t], indices.support_y[t]),
            (indices.query_classes[t], indices.query_y[t]),
        ):
            for c, y in zip(classes.tolist(), labels.tolist(), strict=True):
                assert label_of.setdefault(c, y) == y
        assert sorted(label_of.values()) == list(range(ways))  # ways classes, one label each
        assert torch.bincount(indices.support_y[t], minlength=ways).tolist() == [shots] * ways
        assert torch.bincount(indices.query_y[t], minlength=ways).tolist() == [queries] * ways


def test_digits_errors():
    raises_one_line("ways must be an integer >= 2, got 1", Digits, ways=1)
    raises_one_line("ways must be an integer >= 2, got True", Digits, ways=True)
    raises_one_line(
        "the test split of the digits has 4 classes, fewer than ways = 5",
        Digits,
        split="digits",
        train_digits=list(range(9)),
    )
    raises_one_line(
        "the train split of the digits has 5 classes, fewer than ways = 6",
        Digits,
        ways=6,
        rotations=False,
        split="digits",
    )
    raises_one_line(
        "the test split of the digits has 3 classes, fewer than ways = 5", Digits, rotations=False
    )
    for bad in ([], list(range(10)), [1, 1], [10], [True], "01", 3, [1.5]):
        raises_one_line(
            "train_digits must be a non-empty proper subset of the digits 0..9",
            Digits,
            split="digits",
            train_digits=bad,
        )
    raises_one_line(
        "train_digits goes with split 'digits', not 'classes'", Digits, train_digits=[1]
    )
    raises_one_line("split must be 'classes' or 'digits', got 'all'", Digits, split="all")
    raises_one_line("test_fraction must", Digits, test_fraction=1.5)
    raises_one_line("rotations must be True or False, got 1", Digits, rotations=1)
    raises_one_line(
        r"class '8' of the test split has 174 images, fewer than shots \+ queries = 175",
        Digits(split="digits").sample,
        1,
        100,
        75,
        gen(),
        "test",
    )
    assert Digits().sample(1, 100, 74, gen(), "test").query_x.shape == (1, 370, 1, 8, 8)


# --- image folders


def test_image_folder_nested_layout_splits_by_sorted_path(tmp_path):
    root = write_classes(tmp_path / "omni", NESTED)
    (root / "alpha" / "notes.txt").write_text("not an image")
    (root / "alpha" / "a1" / ".hidden.png").write_bytes(b"skipped")
    tasks = ImageFolder(root, ways=2, image_size=10)
    assert (tasks.kind, tasks.input_shape, tasks.output_size) == ("classification", (1, 10, 10), 2)
    assert tasks.class_names == tuple(NESTED)
    names = {
        split: [tasks.class_name(c) for c in tasks.classes(split)] for split in ("train", "test")
    }
    assert names == {"train": NESTED[:4], "test": NESTED[4:]}  # round(0.25 × 6) = 2 held out
    half = ImageFolder(str(root), ways=2, image_size=10, test_fraction=0.5)
    assert [half.class_name(c) for c in half.classes("test")] == NESTED[3:]
    np.testing.assert_allclose(tasks.images[4 * 5 + 3, 0].numpy(), synthetic_image(5, 3) / 255)


def test_image_folder_with_train_and_test_folders(tmp_path):
    root = tmp_path / "mini"
    write_classes(root / "train", ["n01", "n02", "n03"])
    (root / "test").mkdir()
    for c, name in enumerate(["n07", "n08"]):
        (root / "test" / name).mkdir()
        for j in range(4):
            iio.imwrite(root / "test" / name / f"{j}.PNG", synthetic_image(3 + c, j))
    write_classes(root / "val", ["n05"])  # ignored
    tasks = ImageFolder(root, ways=2, image_size=10, test_fraction=0.9)  # test_fraction unused
    assert [tasks.class_name(c) for c in tasks.classes("train")] == [
        "train/n01",
        "train/n02",
        "train/n03",
    ]
    assert [tasks.class_name(c) for c in tasks.classes("test")] == ["test/n07", "test/n08"]
    batch = tasks.sample(20, 1, 3, gen(), "test")
    classes, _ = decode(torch.cat([batch.support_x, batch.query_x], 1))
    assert set(classes.unique().tolist()) == {3, 4}
    message = raises_one_line("the train split of", ImageFolder, root, ways=4, image_size=10)
    assert message.endswith("has 3 classes, fewer than ways = 4")


def test_image_folder_episodes_read_the_right_images(tmp_path):
    root = write_classes(tmp_path / "omni", NESTED, images_per_class=5)
    tasks, ways, shots, queries = (
        ImageFolder(root, ways=3, image_size=10, test_fraction=0.5),
        3,
        2,
        3,
    )
    batch = tasks.sample(100, shots, queries, gen(9), "train")
    assert batch.support_x.shape == (100, 6, 1, 10, 10) and batch.query_x.shape == (
        100,
        9,
        1,
        10,
        10,
    )
    support_class, support_image = decode(batch.support_x)
    query_class, query_image = decode(batch.query_x)
    assert set(support_class.unique().tolist()) == {0, 1, 2}  # the training classes only
    grouped = 0
    for t in range(100):
        support = set(zip(support_class[t].tolist(), support_image[t].tolist(), strict=True))
        query = set(zip(query_class[t].tolist(), query_image[t].tolist(), strict=True))
        assert len(support) == ways * shots and len(query) == ways * queries and not support & query
        class_of_label = {}
        for classes, labels in (
            (support_class[t], batch.support_y[t]),
            (query_class[t], batch.query_y[t]),
        ):
            for c, y in zip(classes.tolist(), labels.tolist(), strict=True):
                assert class_of_label.setdefault(y, c) == c
        assert sorted(class_of_label) == [0, 1, 2] and len(set(class_of_label.values())) == 3
        assert torch.bincount(batch.query_y[t], minlength=ways).tolist() == [queries] * ways
        labels = batch.support_y[t].tolist()
        grouped += labels == sorted(labels)
    assert grouped < 10  # the support order is shuffled (sorted by chance: 6!/(2!)³ = 1 in 90)
    # Labels are assigned at random: each class gets each label in some task.
    pairs = {
        (c, y)
        for c, y in zip(
            support_class.flatten().tolist(), batch.support_y.flatten().tolist(), strict=True
        )
    }
    assert pairs == {(c, y) for c in range(3) for y in range(3)}


def test_image_folder_rotations_invert_resize_and_colour(tmp_path):
    root = write_classes(tmp_path / "omni", NESTED)
    rotated = ImageFolder(root, ways=5, image_size=10, rotations=True)
    assert len(rotated.classes("train")) == 16 and len(rotated.classes("test")) == 8
    inverted = ImageFolder(root, ways=2, image_size=10, invert=True)
    plain = ImageFolder(root, ways=2, image_size=10)
    torch.testing.assert_close(inverted.images, 1 - plain.images)
    small = ImageFolder(root, ways=2, image_size=5)
    assert small.images.shape == (24, 1, 5, 5) and small.input_shape == (1, 5, 5)
    np.testing.assert_allclose(
        small.images[4 * 2, 0, :3, :3].numpy(), class_value(2) / 255, atol=1e-6
    )

    colour = tmp_path / "colour"
    for c, rgb in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        (colour / f"c{c}").mkdir(parents=True)
        iio.imwrite(colour / f"c{c}" / "0.png", np.full((6, 6, 3), rgb, dtype=np.uint8))
        iio.imwrite(colour / f"c{c}" / "1.png", np.full((6, 6, 4), (*rgb, 128), dtype=np.uint8))
    (colour / "grey").mkdir()
    for j in range(2):
        iio.imwrite(colour / "grey" / f"{j}.png", np.full((6, 6), 51 * (j + 1), dtype=np.uint8))
    grey = ImageFolder(colour, ways=2, image_size=6, test_fraction=0.5)
    np.testing.assert_allclose(
        grey.images[::2, 0, 0, 0].numpy(), [0.299, 0.587, 0.114, 0.2], atol=1e-5
    )
    np.testing.assert_allclose(
        grey.images[1::2, 0, 0, 0].numpy(), [0.299, 0.587, 0.114, 0.4], atol=1e-5
    )
    rgb = ImageFolder(colour, ways=2, image_size=6, grayscale=False, test_fraction=0.5)
    assert rgb.input_shape == (3, 6, 6)
    np.testing.assert_allclose(rgb.images[[0, 2, 4], :, 0, 0].numpy(), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(rgb.images[6, :, 0, 0].numpy(), [0.2, 0.2, 0.2], atol=1e-6)


def test_image_folder_resizes_with_antialiasing(tmp_path):
    stripes = np.zeros((24, 24), dtype=np.uint8)
    stripes[:, ::3] = 255  # every third column: a bilinear sample without antialias reads 0
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).mkdir()
        for j in range(2):
            iio.imwrite(tmp_path / name / f"{j}.png", stripes)
    tasks = ImageFolder(tmp_path, ways=2, image_size=8, test_fraction=0.5)
    expected = F.interpolate(
        torch.as_tensor(stripes / 255, dtype=torch.float32)[None, None],
        size=(8, 8),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    torch.testing.assert_close(tasks.images[0], expected[0])
    assert tasks.images[0, 0, :, 1:-1].numpy() == pytest.approx(1 / 3, abs=0.02)


def test_image_folder_errors(tmp_path):
    raises_one_line("root '.*missing' does not exist", ImageFolder, tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    raises_one_line("root '.*file.png' is not a folder", ImageFolder, tmp_path / "file.png")
    raises_one_line("root must be the path of a folder of image classes, got 3", ImageFolder, 3)
    empty = tmp_path / "empty"
    (empty / "a" / "b").mkdir(parents=True)
    (empty / "a" / "b" / "readme.txt").write_text("no images")
    raises_one_line("holds no class folders", ImageFolder, empty)

    root = write_classes(tmp_path / "omni", NESTED)
    message = raises_one_line("the test split of", ImageFolder, root, ways=3)
    assert message.endswith("omni' has 2 classes, fewer than ways = 3")
    tasks = ImageFolder(root, ways=2)
    raises_one_line(
        r"class 'gamma/g1' of the test split has 4 images, fewer than shots \+ queries = 5",
        tasks.sample,
        2,
        2,
        3,
        gen(),
        "test",
    )
    assert tasks.sample(2, 2, 2, gen(), "test").support_x.shape == (2, 4, 1, 28, 28)
    raises_one_line("image_size must be an integer >= 1, got 0", ImageFolder, root, image_size=0)
    raises_one_line(
        r"test_fraction must be a number in \(0, 1\), got 1", ImageFolder, root, test_fraction=1
    )
    raises_one_line("grayscale must be True or False", ImageFolder, root, grayscale="yes")

    broken = write_classes(tmp_path / "broken", ["x", "y"])
    (broken / "y" / "bad.png").write_bytes(b"this is not a png")
    raises_one_line("cannot read the image '.*bad.png'", ImageFolder, broken, ways=2)

    lopsided = write_classes(tmp_path / "lopsided" / "train", ["x", "y"])
    raises_one_line("holds a 'train' folder but no 'test' folder", ImageFolder, lopsided.parent)


def test_shift_moves_each_drawn_image_by_its_own_offset_within_the_bound():
    plain, shifted = Digits(split="digits"), Digits(split="digits", shift=1)
    indices = plain.sample_indices(20, 2, 3, gen(11), "test")
    batch = shifted.sample(20, 2, 3, gen(11), "test")  # the same draw, then the offsets
    originals = plain.episode(indices)
    for image, original in zip(
        batch.support_x.flatten(0, 1), originals.support_x.flatten(0, 1), strict=True
    ):
        padded = torch.nn.functional.pad(original, (1, 1, 1, 1))
        windows = [
            padded[..., 1 - dy : 9 - dy, 1 - dx : 9 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert any(torch.equal(image, w) for w in windows)
    moved = (batch.support_x != originals.support_x).flatten(2).any(-1).float().mean()
    assert 0.7 < moved < 0.95  # 8 of the 9 offsets move an image (blank borders aside)
    assert torch.equal(batch.support_y, originals.support_y)
    raises_one_line("shift must be an integer >= 0, got -1", Digits, shift=-1)
