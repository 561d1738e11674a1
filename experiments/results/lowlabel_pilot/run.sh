#!/bin/bash
# Issue 21 pilot: how to label generated images when the generator trained on the unlabelled pool.
# Chosen once on VAL of one fraction and seed (PneumoniaMNIST 1%, subset seed 0; 47 labels, pool 4,682),
# declared before running: the arm with the highest mean val AUC over classifier seeds 0-2 is the label
# method of the study's pool generator. Budgets as the committed study (GAN 1,250 it, classifier 300 it).
set -e
cd /work/main; . .venv/bin/activate; export OMP_NUM_THREADS=1
D="--path ../shared/data/pneumoniamnist_union.npz --flag pneumoniamnist --fraction 0.01 --subset-seed 0"
G="--iterations 1250 --batch-size 64 --base-channels 32 --sample-every 625 --checkpoint-every 625 --seed 0 --threads 1 --no-progress --pool train"
O=/work/pilot21
echo "start $(date -u +%T)"
[ -f $O/gan_ssl/generator.pt ] || medgan-aug train $D $G --conditional --out $O/gan_ssl
echo "gan_ssl done $(date -u +%T)"
[ -f $O/gan_uncond/generator.pt ] || medgan-aug train $D $G --out $O/gan_uncond
echo "gan_uncond done $(date -u +%T)"
C="$D --iterations 300 --batch-size 64 --lr 0.001 --threads 1 --no-progress --score-split val"
for s in 0 1 2; do
  [ -f $O/real_s$s/metrics.json ] || medgan-aug classify $C --seed $s --condition real --out $O/real_s$s
  [ -f $O/ssl_cond_s$s/metrics.json ] || medgan-aug classify $C --seed $s --condition real+synthetic@0.5 --run $O/gan_ssl --out $O/ssl_cond_s$s
  [ -f $O/ssl_teacher_s$s/metrics.json ] || medgan-aug classify $C --seed $s --condition real+synthetic@0.5 --run $O/gan_ssl --synthetic-labels teacher --teacher $O/real_s$s --out $O/ssl_teacher_s$s
  [ -f $O/uncond_teacher_s$s/metrics.json ] || medgan-aug classify $C --seed $s --condition real+synthetic@0.5 --run $O/gan_uncond --synthetic-labels teacher --teacher $O/real_s$s --out $O/uncond_teacher_s$s
  [ -f $O/pseudo_s$s/metrics.json ] || medgan-aug classify $C --seed $s --condition real+pseudo@0.5 --teacher $O/real_s$s --out $O/pseudo_s$s
done
echo "end $(date -u +%T)"
