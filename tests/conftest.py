"""bert4keras_blog must be imported before bert4keras (it sets TF_KERAS and
resolves tf.keras first); importing it here makes the order of imports in
test modules irrelevant."""
import bert4keras_blog  # noqa: F401
