"""Prototype for chapter 10: the same MF trained by one worker and by two worker processes on loopback
(MultiWorkerMirroredStrategy, custom loop with strategy.run and strategy.reduce around a Keras model).

    python mwms.py            # the driver: runs one worker alone, then two workers, and compares the losses
    python mwms.py worker I N PORT0   # (internal) worker I of N
"""
import json, os, socket, subprocess, sys, time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
STEPS, BATCH, FACTORS, LR, SEED = 200, 4096, 32, 0.05, 42


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def worker(index, n, ports):
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})
    import numpy as np
    import tensorflow as tf
    import keras
    from keras import layers
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if n > 1 else tf.distribute.get_strategy()
    rng = np.random.default_rng(SEED)
    n_users, n_items, n_pairs = 610, 9000, 80000
    users = rng.integers(0, n_users, n_pairs).astype("int32")
    items = (users * 7 + rng.integers(0, 50, n_pairs)) % n_items  # a learnable structure
    labels = np.ones(n_pairs, "float32")
    neg_items = rng.integers(0, n_items, n_pairs).astype("int32")
    u = np.concatenate([users, users]); i = np.concatenate([items, neg_items]).astype("int32")
    y = np.concatenate([labels, np.zeros(n_pairs, "float32")])
    with strategy.scope():
        keras.utils.set_random_seed(SEED)
        uid, iid = keras.Input((), dtype="int32"), keras.Input((), dtype="int32")
        pu = layers.Embedding(n_users, FACTORS)(uid)
        qi = layers.Embedding(n_items, FACTORS)(iid)
        model = keras.Model([uid, iid], keras.ops.sum(pu * qi, -1))
        optimizer = keras.optimizers.Adam(LR)

    def dataset_fn(ctx):
        ds = tf.data.Dataset.from_tensor_slices((u, i, y)).shuffle(len(y), seed=SEED).repeat()
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id) if ctx.num_input_pipelines > 1 else ds
        return ds.batch(ctx.get_per_replica_batch_size(BATCH)).prefetch(2)

    dist = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def step(batch):
        def replica_step(b):
            bu, bi, by = b
            with tf.GradientTape() as tape:
                logits = model([bu, bi], training=True)
                per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=by, logits=logits)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=(batch,)), axis=None)

    t0 = time.time()
    losses = [float(step(next(dist))) for _ in range(STEPS)]
    print(json.dumps({"worker": index, "n": n, "final_loss": float(np.mean(losses[-20:])),
                      "seconds": time.time() - t0}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), [int(p) for p in sys.argv[4].split(",")])
        sys.exit(0)
    single = subprocess.run([sys.executable, __file__, "worker", "0", "1", "0"], capture_output=True, text=True)
    print("one worker:", single.stdout.strip().splitlines()[-1] if single.stdout else single.stderr[-1500:])
    ports = free_ports(2)
    procs = [subprocess.Popen([sys.executable, __file__, "worker", str(k), "2", ",".join(map(str, ports))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        print("two workers:", out.strip().splitlines()[-1] if out.strip() else err[-1500:])
