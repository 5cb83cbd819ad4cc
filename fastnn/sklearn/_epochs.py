"""scikit-learn's per-epoch rules (loss curve, ``tol``, learning-rate schedules, stopping)
as a fastnn callback."""

import warnings

import numpy as np

from fastnn.callbacks import Callback
from fastnn.sklearn._compat import ConvergenceWarning


class _EpochControl(Callback):
    """scikit-learn's per-iteration rules, run at each epoch end of a Trainer.

    Sets ``stop`` when training must end, and ``restart`` when the learning rate
    changed (training then continues in a new ``Trainer.fit`` call, so a compiled
    backend never keeps a stale rate).
    """

    def __init__(self, est, optimizer, n_train, batch_size, val, incremental):
        self.est, self.opt = est, optimizer
        self.n_train, self.batch_size = n_train, batch_size
        # the size of each batch, B (the last may be short)
        self.sizes = np.diff(np.append(np.arange(0, n_train, batch_size), n_train)).astype(np.float64)
        self.val, self.incremental = val, incremental
        self.stop = self.restart = False
        self._w2 = None

    def weight_norm2(self):
        w = self.net.params[:self.net.n_decay]
        return float(np.dot(w, w.astype(np.float64)))

    def on_train_begin(self, logs=None):
        self.restart = False
        self._w2 = self.weight_norm2()

    def on_epoch_end(self, epoch, logs=None):
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        # scikit-learn adds 0.5*alpha*||W||^2/sum(w) to each batch loss (sum(w) = B without
        # weights) and weights batch losses by B: sum_b B/sum(w) * 0.5*alpha*||W||^2 / n per
        # epoch, where B/sum(w) = decay_factors * B / batch_size (the Trainer's, this epoch).
        w2 = self.weight_norm2()
        per_batch = float(np.dot(self.trainer.decay_factors, self.sizes)) / self.batch_size
        penalty = 0.5 * est.alpha * per_batch * 0.5 * (self._w2 + w2) / self.n_train
        self._w2 = w2
        est.loss_ = float(logs["loss"]) * est._loss_scale() + penalty
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        est._update_no_improvement_count(self.val, self.net)

        if est.solver == "sgd" and est.learning_rate == "invscaling":
            self.opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
            self.restart = True
        if est._no_improvement_count > est.n_iter_no_change:
            what = ("Validation score" if est.early_stopping else "Training loss")
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            if est.solver == "sgd" and est.learning_rate == "adaptive" and self.opt.lr > 1e-6:
                self.opt.lr /= 5.0
                est._no_improvement_count = 0
                self.restart = True
                if est.verbose:
                    print(msg + " Setting learning rate to %f" % self.opt.lr)
            else:
                if est.verbose:
                    print(msg + (" Learning rate too small." if est.learning_rate == "adaptive"
                                 and est.solver == "sgd" else "") + " Stopping.")
                self.stop = True
        if self.incremental:
            self.stop = True
        elif est.n_iter_ == est.max_iter and not self.stop:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % est.max_iter, ConvergenceWarning)
            self.stop = True
        if self.stop or self.restart:
            self.trainer.stop_training = True
