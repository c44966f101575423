# Completion latency p50 and p99 (µs, log) per job per system, one group.
# gnuplot -e "out='X.png'; p50='A.dat'; p99='B.dat'; n='4'; title='...'" latency.gp
set terminal pngcairo size 1200,900 font ",10" noenhanced
set output out
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top autotitle columnhead
set grid ytics
set logscale y
set yrange [0.1:*]
set xtics rotate by -20
set multiplot layout 2,1 title title
set ylabel "p50 latency, µs (log)"
plot for [i=2:n+1] p50 using i:xtic(1)
set ylabel "p99 latency, µs (log)"
plot for [i=2:n+1] p99 using i:xtic(1)
unset multiplot
