#!/usr/bin/python3
"""Trains small scikit-learn models on datasets shipped inside scikit-learn
and writes them as ONNX-ML (ai.onnx.ml) models with onnx.helper — no
converter package — plus test inputs and scikit-learn's own predictions.

Run with Debian's python3-sklearn, python3-onnx, python3-numpy:
    /usr/bin/python3 tools/ml/generate_sklearn_models.py [--out models/ml]
                     [--bench-out DIR]

Writes, per model NAME: NAME.onnx, NAME_labels.npy (sklearn predict, int64;
float32 for regressors) and NAME_scores.npy (float32: predict_proba, or the
decision values in the ONNX op's layout); per dataset DS: DS_test_x.npy
(float32), DS_test_y.npy (int64 truth; float32 for regression) and
DS_calib_x.npy (float32, 200 training rows, for int8 calibration).
Deterministic: fixed seeds, fixed splits.

--bench-out DIR also writes benchmark-sized ensembles (not committed: a few
MB) in the form ONNX Runtime loads — plain float attribute lists (ORT 1.30
refuses float64 `*_as_tensor` attributes on a float model, which the spec
allows and quantserve reads) and no ZipMap — with the same test inputs, for
bench/ml_vs_ort.py.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn import datasets
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC, LinearSVC

ML = "ai.onnx.ml"


def f32_floor(values):
    """Largest float32 <= each float64 value: sklearn compares float32
    features with float64 thresholds, so x <= t  <=>  x <= floor32(t)."""
    t = np.asarray(values, dtype=np.float64)
    t32 = t.astype(np.float32)
    up = t32.astype(np.float64) > t
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def model(nodes, inputs, outputs, ml_opset=3, name="sklearn"):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    m = helper.make_model(graph, producer_name="quantserve-generate_sklearn_models",
                          opset_imports=[helper.make_opsetid("", 13),
                                         helper.make_opsetid(ML, ml_opset)])
    onnx.checker.check_model(m)
    return m


def float_input(features):
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", features])


def classifier_outputs(classes, scores_name="probabilities"):
    return [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info(scores_name, TensorProto.FLOAT, ["N", classes])]


def tree_attrs(trees, leaf_weights, prefix):
    """nodes_* and PREFIX* attributes for a list of sklearn tree_ objects.
    leaf_weights(tree_index, tree, leaf) -> [(target, weight), ...]."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                         "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                         prefix + "treeids", prefix + "nodeids", prefix + "ids",
                         prefix + "weights"]}
    for ti, t in enumerate(trees):
        thresholds = f32_floor(t.threshold)
        for n in range(t.node_count):
            leaf = t.children_left[n] == -1
            a["nodes_treeids"].append(ti)
            a["nodes_nodeids"].append(n)
            a["nodes_featureids"].append(0 if leaf else int(t.feature[n]))
            a["nodes_values"].append(0.0 if leaf else float(thresholds[n]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(t.children_left[n]))
            a["nodes_falsenodeids"].append(0 if leaf else int(t.children_right[n]))
            if leaf:
                for target, w in leaf_weights(ti, t, n):
                    a[prefix + "treeids"].append(ti)
                    a[prefix + "nodeids"].append(n)
                    a[prefix + "ids"].append(int(target))
                    a[prefix + "weights"].append(float(w))
    return a


def as_tensor_attrs(attrs, names):
    """Opset-3 form: float lists as double tensors (…_as_tensor)."""
    for n in names:
        attrs[n + "_as_tensor"] = numpy_helper.from_array(
            np.asarray(attrs.pop(n), dtype=np.float64), n + "_as_tensor")
    return attrs


def random_forest(X, y, n_estimators=30, max_depth=9, zipmap=True):
    clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                 random_state=0).fit(X, y)
    n = len(clf.estimators_)

    def leaf(_, t, node):
        p = t.value[node][0] / t.value[node][0].sum()
        return [(c, p[c] / n) for c in range(len(p)) if p[c] > 0]

    a = tree_attrs([e.tree_ for e in clf.estimators_], leaf, "class_")
    classes = [int(c) for c in clf.classes_]
    tree = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"],
                            domain=ML, classlabels_int64s=classes, post_transform="NONE", **a)
    if not zipmap:
        return clf, model([tree], [float_input(X.shape[1])], classifier_outputs(len(classes))), \
            clf.predict_proba
    nodes = [tree,
             helper.make_node("ZipMap", ["probabilities"], ["output_probability"], domain=ML,
                              classlabels_int64s=classes)]
    zipmap_type = onnx.TypeProto()  # seq(map(int64, tensor(float)))
    entry = zipmap_type.sequence_type.elem_type.map_type
    entry.key_type = TensorProto.INT64
    entry.value_type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
               helper.make_value_info("output_probability", zipmap_type)]
    return clf, model(nodes, [float_input(X.shape[1])], outputs), clf.predict_proba


def boosting_attrs(est, X, prefix):
    """One score: Σ learning_rate · leaf value + the initial raw prediction."""
    lr = est.learning_rate
    a = tree_attrs([e.tree_ for e in est.estimators_[:, 0]],
                   lambda _, t, node: [(0, lr * t.value[node][0][0])], prefix)
    a["base_values"] = [float(v) for v in est._raw_predict_init(X[:1])[0]]
    return a


def gradient_boosting_binary(X, y, n_estimators=60, max_depth=3, tensor_attrs=True):
    clf = GradientBoostingClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                     random_state=0).fit(X, y)
    a = boosting_attrs(clf, X, "class_")
    if tensor_attrs:
        a = as_tensor_attrs(a, ["nodes_values", "class_weights", "base_values"])
    nodes = [helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"],
                              domain=ML, classlabels_int64s=[0, 1], post_transform="LOGISTIC",
                              **a)]
    return clf, model(nodes, [float_input(X.shape[1])], classifier_outputs(2)), clf.predict_proba


def gradient_boosting_regressor(X, y, n_estimators=80, max_depth=3):
    reg = GradientBoostingRegressor(n_estimators=n_estimators, max_depth=max_depth,
                                    random_state=0).fit(X, y)
    a = boosting_attrs(reg, X, "target_")
    nodes = [helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain=ML,
                              n_targets=1, aggregate_function="SUM", post_transform="NONE", **a)]
    out = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, ["N", 1])]
    return reg, model(nodes, [float_input(X.shape[1])], out, ml_opset=1), None


def scaler_node(scaler):
    return helper.make_node("Scaler", ["input"], ["scaled"], domain=ML,
                            offset=[float(v) for v in scaler.mean_],
                            scale=[float(1 / v) for v in scaler.scale_])


def logistic_regression(X, y):
    scaler = StandardScaler().fit(X)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(X), y)
    nodes = [scaler_node(scaler),
             helper.make_node("LinearClassifier", ["scaled"], ["label", "probabilities"],
                              domain=ML, classlabels_ints=[int(c) for c in clf.classes_],
                              coefficients=[float(v) for v in clf.coef_.ravel()],
                              intercepts=[float(v) for v in clf.intercept_],
                              multi_class=1, post_transform="SOFTMAX")]
    m = model(nodes, [float_input(X.shape[1])], classifier_outputs(len(clf.classes_)))
    return clf, m, lambda Z: clf.predict_proba(scaler.transform(Z)), scaler


def linear_svm(X, y):
    scaler = StandardScaler().fit(X)
    clf = LinearSVC(C=0.5, max_iter=20000, random_state=0).fit(scaler.transform(X), y)
    nodes = [scaler_node(scaler),
             helper.make_node("LinearClassifier", ["scaled"], ["label", "scores"], domain=ML,
                              classlabels_ints=[0, 1],
                              coefficients=[float(v) for v in clf.coef_.ravel()],
                              intercepts=[float(v) for v in clf.intercept_],
                              post_transform="NONE")]
    m = model(nodes, [float_input(X.shape[1])], classifier_outputs(2, "scores"))

    def scores(Z):
        s = clf.decision_function(scaler.transform(Z))
        return np.stack([-s, s], axis=1)
    return clf, m, scores, scaler


def svc_node(clf, input_name, with_proba):
    gamma = float(clf._gamma)
    attrs = dict(classlabels_ints=[int(c) for c in clf.classes_],
                 coefficients=[float(v) for v in clf._dual_coef_.ravel()],
                 rho=[float(v) for v in clf._intercept_],
                 support_vectors=[float(v) for v in clf.support_vectors_.ravel()],
                 vectors_per_class=[int(v) for v in clf.n_support_],
                 kernel_type=clf.kernel.upper(),
                 kernel_params=[gamma, float(clf.coef0), float(clf.degree)],
                 post_transform="NONE")
    if with_proba:
        attrs["prob_a"] = [float(v) for v in clf.probA_]
        attrs["prob_b"] = [float(v) for v in clf.probB_]
    return helper.make_node("SVMClassifier", [input_name], ["label", "probabilities" if with_proba
                                                             else "scores"], domain=ML, **attrs)


def rbf_svm(X, y):
    clf = SVC(kernel="rbf", C=5.0, gamma="scale", probability=True, random_state=0).fit(X, y)
    m = model([svc_node(clf, "input", True)], [float_input(X.shape[1])],
              classifier_outputs(len(clf.classes_)))
    return clf, m, clf.predict_proba


def poly_svm(X, y):
    norm = Normalizer(norm="l2").fit(X)
    clf = SVC(kernel="poly", degree=3, coef0=1.0, gamma="scale",
              decision_function_shape="ovo").fit(norm.transform(X), y)
    nodes = [helper.make_node("Normalizer", ["input"], ["normalized"], domain=ML, norm="L2"),
             svc_node(clf, "normalized", False)]
    k = len(clf.classes_)
    m = model(nodes, [float_input(X.shape[1])], classifier_outputs(k * (k - 1) // 2, "scores"))
    return clf, m, lambda Z: clf.decision_function(norm.transform(Z)), norm


DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "wine": datasets.load_wine,
    "iris": datasets.load_iris,
    "diabetes": datasets.load_diabetes,
}

# name -> (dataset, builder)
MODELS = {
    "rf_digits": ("digits", random_forest),
    "gb_breast_cancer": ("breast_cancer", gradient_boosting_binary),
    "gb_diabetes": ("diabetes", gradient_boosting_regressor),
    "logreg_wine": ("wine", logistic_regression),
    "linsvc_breast_cancer": ("breast_cancer", linear_svm),
    "svc_rbf_digits": ("digits", rbf_svm),
    "svc_poly_iris": ("iris", poly_svm),
}

# Benchmark-sized ensembles in ONNX Runtime's form: name -> (dataset, builder).
BENCH_MODELS = {
    "rf300_digits": ("digits", lambda X, y: random_forest(X, y, 300, None, zipmap=False)),
    "gb500_breast_cancer": ("breast_cancer", lambda X, y: gradient_boosting_binary(
        X, y, 500, 4, tensor_attrs=False)),
    "gb500_diabetes": ("diabetes", lambda X, y: gradient_boosting_regressor(X, y, 500, 4)),
}


def write_bench_models(out, splits):
    os.makedirs(out, exist_ok=True)
    for ds, (_, Xte, _, _) in splits.items():
        np.save(os.path.join(out, f"{ds}_test_x.npy"), Xte)
    for name, (ds, build) in BENCH_MODELS.items():
        Xtr, _, ytr, _ = splits[ds]
        m = build(Xtr, ytr)[1]
        path = os.path.join(out, f"{name}.onnx")
        onnx.save(m, path)
        nodes = len([a for a in m.graph.node[0].attribute if a.name == "nodes_treeids"][0].ints)
        print(f"{name}: {nodes} nodes, {os.path.getsize(path)} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "..", "models", "ml"))
    parser.add_argument("--bench-out", help="also write benchmark-sized ensembles here")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    splits = {}
    for ds, load in DATASETS.items():
        X, y = load(return_X_y=True)
        X = X.astype(np.float32)
        regression = ds == "diabetes"
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0,
                                              stratify=None if regression else y)
        splits[ds] = (Xtr, Xte, ytr, yte)
        np.save(os.path.join(args.out, f"{ds}_test_x.npy"), Xte)
        np.save(os.path.join(args.out, f"{ds}_test_y.npy"),
                yte.astype(np.float32 if regression else np.int64))
        np.save(os.path.join(args.out, f"{ds}_calib_x.npy"), Xtr[:200])
    for name, (ds, build) in MODELS.items():
        Xtr, Xte, ytr, yte = splits[ds]
        built = build(Xtr, ytr)
        est, m, scores = built[0], built[1], built[2]
        pre = built[3] if len(built) > 3 else None
        onnx.save(m, os.path.join(args.out, f"{name}.onnx"))
        Xin = pre.transform(Xte) if pre is not None else Xte
        pred = est.predict(Xin)
        if ds == "diabetes":
            np.save(os.path.join(args.out, f"{name}_labels.npy"), pred.astype(np.float32))
            print(f"{name}: R^2 {est.score(Xin, yte):.4f}")
            continue
        np.save(os.path.join(args.out, f"{name}_labels.npy"), pred.astype(np.int64))
        np.save(os.path.join(args.out, f"{name}_scores.npy"),
                np.asarray(scores(Xte if pre is not None else Xte), dtype=np.float32))
        print(f"{name}: accuracy {np.mean(pred == yte):.4f}, "
              f"{os.path.getsize(os.path.join(args.out, name + '.onnx'))} bytes")
    if args.bench_out:
        write_bench_models(args.bench_out, splits)


if __name__ == "__main__":
    main()
